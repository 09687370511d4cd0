"""Time and peak-memory measurement shared by the benchmarks.

Peak memory is read in-process on Linux: writing "5" to /proc/self/clear_refs
resets the process's high-water mark of resident memory (VmHWM), so the peak
of one call is VmHWM after it minus VmRSS before it. PyTorch's CPU allocator
does not cache; glibc would (its mmap threshold grows after each large free,
so later tensors come from a heap it keeps resident), so a benchmark that
measures peak memory first calls :func:`pin_allocator_for_peak_memory`: every
tensor larger than 64 KiB is then its own mapping, returned to the system when
freed, and each call's peak is its own. That makes every large allocation a
fresh mapping (a training loop ran 1.75× slower under it), so benchmarks that
only time do not call it: they run under the allocator a user's process has.
"""

import ctypes
import gc
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

MIB = 2**20
T = TypeVar("T")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters from <malloc.h>


def pin_allocator_for_peak_memory(threshold: int = 64 * 1024) -> None:
    """Pin glibc's mmap and trim thresholds, for this whole process (see the module)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    libc.mallopt(_M_TRIM_THRESHOLD, threshold)


def _status_bytes(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) * 1024


def peak_memory_mib(fn: Callable[[], object]) -> float:
    """Peak resident memory that ``fn()`` adds above what was resident before it, in MiB."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_bytes("VmRSS")
    fn()
    return max(_status_bytes("VmHWM") - before, 0) / MIB


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_runs(runs: dict[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Each of ``runs`` once, untimed (the first run pays for caches and pools), then
    ``repeats`` rounds of all of them back to back; every round's result, by name.

    The machine is shared and its slow spells outlast a round, so the ratio of two runs of
    the same round (:func:`paired_ratio`) cancels them where two separate medians would not.
    """
    for run in runs.values():
        run()
    results: dict[str, list[T]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return results


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median over rounds of each round's ``numerator / denominator``."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def machine_line() -> str:
    """One line describing where the numbers were taken: the CPU's model too, since training
    on another CPU rounds differently (another trajectory) and runs at another speed."""
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()} ({cpu_model()})"
    )


def cpu_model() -> str:
    """The CPU's model name as Linux reports it, or the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def command_line() -> str:
    return "python " + " ".join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])


def write_report(path: Path, text: str) -> None:
    """Write a results file atomically (temp file, then rename), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
