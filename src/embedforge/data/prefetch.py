"""Make the next items of an iterable in the background while the consumer works on this one.

Images read from disk (:class:`~embedforge.data.lazy_images.LazyImages`) would otherwise leave
the model idle while each batch is decoded; one thread reading the next batch during the
step hides that time. The queue is bounded, so at most ``depth + 1`` items are made ahead
(``depth`` queued, one being made).
"""

import threading
from collections.abc import Iterable, Iterator
from queue import Full, Queue
from typing import Any, Literal, TypeVar

T = TypeVar("T")
_Entry = tuple[Literal["item", "error", "end"], Any]  # the item, the error raised, or the end

_POLL_SECONDS = 0.1  # how soon a producer waiting on a full queue notices the consumer left


def prefetch(iterable: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``iterable``, in order, each made in a background thread ahead of use.

    An exception raised while making an item is raised here, in the consumer, in that item's
    place. Leaving early (``break``, ``close()``, or dropping the iterator) stops the thread
    once it has finished the item it is making; nothing is left blocked. The thread starts at
    the first ``next``.

    >>> list(prefetch(x * x for x in range(5)))
    [0, 1, 4, 9, 16]
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be at least 1, got {depth}")
    return _prefetched(iterable, depth)


def _prefetched(iterable: Iterable[T], depth: int) -> Iterator[T]:
    queue: Queue[_Entry] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: _Entry) -> bool:
        """Queue ``entry`` unless the consumer has left; whether it was queued."""
        while not stop.is_set():
            try:
                queue.put(entry, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put(("item", item)):
                    return
        except BaseException as error:  # raised again by the consumer, which would else wait
            put(("error", error))
        else:
            put(("end", None))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()
