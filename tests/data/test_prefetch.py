"""prefetch: items made in a background thread, in order, errors raised where they belong."""

import gc
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from embedforge.data.prefetch import prefetch


def producer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "prefetch"]


def run_within(action: Callable[[], None], seconds: float = 10.0) -> None:
    """Run ``action``, failing if it raises or has not returned after ``seconds`` (a hang)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:
            errors.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(seconds)
    assert not runner.is_alive(), f"still running after {seconds} s"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("count", [0, 1, 50])
def test_keeps_the_order_and_ends(depth: int, count: int) -> None:
    assert list(prefetch(iter(range(count)), depth)) == list(range(count))
    assert not producer_threads()


def counting(made: list[int], count: int | None = None) -> Iterator[int]:
    """0, 1, ... (``count`` of them, or without end), each noted in ``made`` once made."""
    i = 0
    while count is None or i < count:
        made.append(i)
        yield i
        i += 1


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and a little longer: nothing more should happen


def test_makes_the_next_item_ahead_but_no_further_than_the_queue_allows() -> None:
    made: list[int] = []
    items = prefetch(counting(made, 10), depth=1)
    assert next(items) == 0
    wait_until(lambda: len(made) >= 3)
    assert made == [0, 1, 2]  # 1 queued, 2 made and waiting for room
    assert list(items) == list(range(1, 10))


def test_an_error_in_the_source_is_raised_in_the_consumer_in_its_place() -> None:
    def source() -> Iterator[int]:
        yield 0
        yield 1
        raise KeyError("image 2")

    got = []
    with pytest.raises(KeyError, match="image 2"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [0, 1]
    assert not producer_threads()


def test_a_bad_depth_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1"):
        prefetch([], depth=0)


@pytest.mark.parametrize("leave", ["close", "drop"])
def test_leaving_early_stops_the_thread_waiting_on_the_full_queue(leave: str) -> None:
    def consume() -> None:
        made: list[int] = []
        items = prefetch(counting(made))
        for item in items:
            if item == 2:
                break
        wait_until(lambda: len(made) >= 5)  # 3 queued, 4 made and waiting for room
        assert made == [0, 1, 2, 3, 4] and producer_threads()
        if leave == "close":
            items.close()
        else:
            del items  # the generator is closed as it is freed
            gc.collect()
        assert not producer_threads()

    run_within(consume)
