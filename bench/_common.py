"""Shared by the benchmarks: the environment (float64, 2 threads), timing, tables.

Import this module before numpy, jax or torch: it sets the thread counts and
JAX's float64 switch in the environment, which those libraries read at import.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "2"
os.environ["JAX_ENABLE_X64"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")

import datetime
import gc
import importlib.metadata
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
THREADS = 2


def setup_torch():
    """torch with 2 threads, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        print("torch not installed: pip install -r bench/requirements.txt", file=sys.stderr)
        return None
    torch.set_num_threads(THREADS)
    return torch


def setup_jax():
    """jax with float64, or None where it is not installed."""
    try:
        import jax
    except ImportError:
        print("jax not installed: pip install -r bench/requirements.txt", file=sys.stderr)
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def setup_autograd():
    try:
        import autograd
        import autograd.numpy
    except ImportError:
        print("autograd not installed: pip install -r bench/requirements.txt", file=sys.stderr)
        return None
    return autograd


# ------------------------------------------------------------------ timing

class Timings(dict):
    """{row name: [seconds, ...]} and how the rounds were kept."""
    kept = discarded = wanted = 0
    load = 0.0             # cores other processes used, on average, in the kept rounds
    capped = False         # the time limit came before enough quiet rounds
    noisy_counted = False  # ... so few that the noisy rounds are counted too


def interleaved(rows: Sequence[tuple[str, Callable[[], object]]], repeats: int,
                warmup: int = 2, warm_each: int = 1, seed: int = 0,
                quiet: float | None = None, max_seconds: float = 150.0) -> Timings:
    """Time every row once per round, rounds repeated: the rows are measured side
    by side, so a slow spell of the machine hits them all alike.  The order of
    the rows is shuffled in each round (no row always follows the same one), and
    each timed call comes right after `warm_each` untimed calls of the same row,
    so that every library is timed with its worker threads awake (OpenBLAS,
    OpenMP and XLA threads that went to sleep while another library ran take
    milliseconds to wake on this machine), as in a loop that calls it repeatedly.

    With quiet=c, rounds are taken in blocks of at least 0.3 s, and a block in
    which other processes kept more than c cores busy is thrown away (2-thread
    BLAS on 2 cores is slowed many times over when another process takes a core);
    rounds are taken until `repeats` are kept or max_seconds have passed (then
    the quiet rounds taken so far count, or, where they are fewer than a quarter
    of `repeats`, every round, the noisy ones included).  Seconds."""
    for _, fn in rows:
        for _ in range(warmup):
            fn()
    out = Timings({name: [] for name, _ in rows})
    out.wanted = repeats
    noisy: dict[str, list[float]] = {name: [] for name, _ in rows}
    noisy_load: list[float] = []
    kept_load: list[float] = []
    order = list(rows)
    rng = random.Random(seed)
    start = time.perf_counter()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        while out.kept < repeats:
            monitor = LoadMonitor()
            block: dict[str, list[float]] = {name: [] for name, _ in rows}
            n = 0
            while n == 0 or (quiet is not None and time.perf_counter() - monitor.started < 0.3
                             and out.kept + n < repeats):
                rng.shuffle(order)
                for name, fn in order:
                    for _ in range(warm_each):
                        fn()
                    t = time.perf_counter()
                    fn()
                    block[name].append(time.perf_counter() - t)
                n += 1
            load = monitor.others()
            if quiet is None or load <= quiet:
                for name, ts in block.items():
                    out[name] += ts
                out.kept += n
                kept_load += [load] * n
            else:
                for name, ts in block.items():
                    noisy[name] += ts
                out.discarded += n
                noisy_load += [load] * n
            if time.perf_counter() - start > max_seconds and out.kept < repeats:
                out.capped = True
                if out.kept < max(5, repeats // 4):        # too few quiet rounds: count the noisy too
                    out.noisy_counted = True
                    for name, ts in noisy.items():
                        out[name] += ts
                    kept_load += noisy_load
                break
    finally:
        if gc_was:
            gc.enable()
    out.load = statistics.fmean(kept_load) if kept_load else 0.0
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> str:
    """Interquartile range relative to the median, as a percentage."""
    if len(xs) < 4:
        return "-"
    q = statistics.quantiles(xs, n=4)
    return f"±{50 * (q[2] - q[0]) / statistics.median(xs):.0f}%"


def ms(seconds: float) -> str:
    v = 1e3 * seconds
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; align is one letter per column, l or r (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ other processes' load

def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = f[0] + f[1] + f[2] + sum(f[5:8])        # user nice system irq softirq steal
    return busy, busy + f[3] + f[4]                 # + idle iowait


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMonitor:
    """How many cores other processes kept busy while this one ran: the
    benchmarks share the machine, and 2-thread BLAS suffers when a core is taken."""

    def __init__(self):
        self._busy, _ = _cpu_jiffies()
        self._own = _own_cpu()
        self._wall = self.started = time.perf_counter()

    def others(self) -> float:
        busy, _ = _cpu_jiffies()
        wall = time.perf_counter() - self._wall
        tick = os.sysconf("SC_CLK_TCK")
        return max(0.0, ((busy - self._busy) / tick - (_own_cpu() - self._own)) / max(wall, 1e-9))


def wait_for_quiet(threshold: float = 0.3, max_wait: float = 120.0) -> tuple[float, float]:
    """Wait (at most max_wait s) for other processes to use under `threshold`
    cores over a 2 s window; returns (seconds waited, the last window's load)."""
    start = time.perf_counter()
    while True:
        m = LoadMonitor()
        time.sleep(2.0)
        load = m.others()
        waited = time.perf_counter() - start
        if load < threshold or waited >= max_wait:
            return waited, load


# ------------------------------------------------------------------ notes

def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _blas() -> str:
    try:
        import numpy as np
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - only a note
        return "unknown BLAS"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "matcalc"], cwd=ROOT,
                               text=True, capture_output=True, check=False).stdout.strip()
        return head + (" with uncommitted changes under matcalc/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_notes() -> str:
    cores = os.cpu_count()
    return "\n".join([
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {_cpu()}, {cores} cores, {platform.system()} {platform.release()}",
        (f"- Python {platform.python_version()}; NumPy {_version('numpy')} ({_blas()}); "
         f"jax {_version('jax')}; torch {_version('torch')}; autograd {_version('autograd')}; "
         f"sympy {_version('sympy')}"),
        f"- matcalc: commit {_git()}",
        (f"- float64 everywhere; OMP/MKL/OPENBLAS_NUM_THREADS={THREADS}, "
         f"torch.set_num_threads({THREADS}), JAX_ENABLE_X64=1 (JAX on CPU)"),
    ])


def rounds(times) -> str:
    """How the medians of an interleaved run were taken, for the text beside its table."""
    if times.noisy_counted:
        return (f"Median of {times.kept + times.discarded} interleaved rounds: only {times.kept} quiet rounds came "
                f"within the time limit, so the noisy ones count too (other processes kept {times.load:.2f} "
                f"cores busy on average)")
    return (f"Median of {times.kept} interleaved rounds ({times.discarded} thrown away as noisy; other "
            f"processes kept {times.load:.2f} cores busy on average in the rounds kept)")


def main(run, argv=None) -> dict:
    """A comparison's command line: `--quick` for small sizes; each result slower than its
    goal is printed as a SLOWER line."""
    argv = sys.argv[1:] if argv is None else argv
    out = run(quick="--quick" in argv)
    for f in out["flags"]:
        print("SLOWER:", f)
    return out
