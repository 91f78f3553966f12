"""What the check's added points cost: `d.check()` on every example, with the points it
adds where the input or a result has kinks, against the same check with those points
switched off (the 3-point plan of before), interleaved, median of REPEATS runs each.

    python bench/check_cost.py
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402,F401  (thread counts, before NumPy)

import matcalc  # noqa: E402
import matcalc.check as check  # noqa: E402
import matcalc.check.points as points  # noqa: E402

REPEATS = 5


def _derivation(path: Path):
    text = path.read_text()
    program = matcalc.parse(text)
    tried = re.search(r"Try: matcalc (\w+) -f \S+ (.*)", text)
    command, wrt = (tried.group(1), re.findall(r"--wrt (\S+)", tried.group(2))) if tried \
        else ("grad", list(program.inputs)[:3])
    return getattr(matcalc, command)(text, wrt)


def _time(d) -> float:
    t = time.perf_counter()
    d.check()
    return time.perf_counter() - t


def _plain(d) -> float:
    """The check without the added points."""
    saved = points.EXTRA_POINTS, check.KINK_LINES
    points.EXTRA_POINTS, check.KINK_LINES = 0, 0
    try:
        return _time(d)
    finally:
        points.EXTRA_POINTS, check.KINK_LINES = saved


def main() -> None:
    rows, total = [], [0.0, 0.0]
    for path in sorted((C.ROOT / "examples").glob("*.mc")):
        try:
            d = _derivation(path)
        except matcalc.MatcalcError:
            continue
        d.check()                           # generate the module once
        plain, full = [], []
        for _ in range(REPEATS):
            plain.append(_plain(d))
            full.append(_time(d))
        p, f = statistics.median(plain), statistics.median(full)
        total[0] += p
        total[1] += f
        rows.append((path.name, d.check().points, p, f))
    print("| example | points | 3-point check (s) | with kink points (s) | ratio |")
    print("|---|---|---|---|---|")
    for name, n, p, f in rows:
        print(f"| {name} | {n} | {p:.3f} | {f:.3f} | {f / p:.2f} |")
    print(f"| all | | {total[0]:.3f} | {total[1]:.3f} | {total[1] / total[0]:.2f} |")


if __name__ == "__main__":
    main()
