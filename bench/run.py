"""Run every benchmark and write bench/results.md.

    pip install -r bench/requirements.txt
    python bench/run.py            # the whole suite, about 10 minutes on 2 cores
    python bench/run.py --quick    # a smoke run: few repeats, sizes to 32; writes bench/results-quick.md
    python bench/run.py --only "linear maps"   # one benchmark; replaces its section of results.md

Each benchmark is a module of its own with a main(), runnable alone:
generated_code.py, dl_losses.py, batched_mlp.py, derivation_scaling.py, startup.py, linear_maps.py.  Before each one this
script waits (up to a minute) for the machine to be quiet, and records how
many cores other processes kept busy while it ran: the machine has 2 cores, so
anything else running shows in the figures (the ratios, taken side by side in one
process, suffer least); generated_code.py also throws away the rounds during
which other processes kept a core busy.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # first: threads and float64 are set before numpy, jax, torch load
import batched_mlp
import derivation_scaling
import dl_losses
import generated_code
import linear_maps
import startup

BUSY = 0.25     # cores kept busy by other processes above which the results carry a warning
BENCHMARKS = [("generated code", generated_code), ("deep-learning losses", dl_losses),
              ("batched network", batched_mlp),
              ("derivation time", derivation_scaling), ("start-up", startup), ("linear maps", linear_maps)]


def only(label: str, quick: bool) -> None:
    """Run one benchmark and put its section into the existing results file in place of
    its last one (the other sections stay as their last full run left them)."""
    module = dict(BENCHMARKS)[label]
    waited, before = C.wait_for_quiet(max_wait=10 if quick else 60)
    monitor, t = C.LoadMonitor(), time.perf_counter()
    out = module.run(quick=quick)
    note = (f"Run alone by `python bench/run.py --only {shlex.quote(label)}` at commit {C._git()}: "
            f"{time.perf_counter() - t:.0f} s, other processes kept {monitor.others():.2f} cores busy "
            f"on average (waited {waited:.0f} s for quiet).")
    section = out["markdown"].replace("\n\n", f"\n\n{note}\n\n", 1)
    if out["flags"]:
        section += "\n\nFlagged:\n\n" + "\n".join(f"- {f}" for f in out["flags"])
    path = C.BENCH / ("results-quick.md" if quick else "results.md")
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = section.split("\n", 1)[0]
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("\n" + text[end:] if end != -1 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"wrote the {label} section of {path}")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    if "--only" in argv:
        return only(argv[argv.index("--only") + 1], quick)
    command = "python bench/run.py" + (" --quick" if quick else "")
    started = time.perf_counter()
    sections, flags, loads = [], [], []
    for label, module in BENCHMARKS:
        waited, before = C.wait_for_quiet(max_wait=10 if quick else 60)
        monitor = C.LoadMonitor()
        t = time.perf_counter()
        print(f"== {label} (waited {waited:.0f} s for a quiet machine; other processes then used "
              f"{before:.2f} cores)", flush=True)
        out = module.run(quick=quick)
        loads.append([label, f"{time.perf_counter() - t:.0f} s", f"{waited:.0f} s", f"{monitor.others():.2f}"])
        sections.append(out["markdown"])
        flags += [f"{label}: {f}" for f in out["flags"]]
    total = time.perf_counter() - started
    busiest = max(float(row[3]) for row in loads)
    warning = (f"**Measured on a busy machine**: other processes kept up to {busiest:.2f} of the 2 cores "
               "busy (table below). Two-thread BLAS slows many times over when another process takes a "
               "core, so absolute times here are inflated, several times over for the NumPy rows (the "
               "`min ms` column is closer to an idle machine); ratios of rows timed side by side hold "
               "better. Run again on an idle machine for figures to quote."
               if busiest > BUSY else "")

    findings = ("\n".join(f"- {f}" for f in flags) if flags else
                "- none: no matcalc row is more than 10% slower than hand-written NumPy, "
                "and no derivation time grows faster than ×2.5 per doubling")
    md = "\n\n".join([
        "# Benchmark results",
        "Written by `bench/run.py`; do not edit by hand.",
        *([warning] if warning else []),
        "## Machine and method",
        C.machine_notes() + "\n"
        f"- Command: `cd {shlex.quote(str(C.ROOT))} && pip install -r bench/requirements.txt && {command}` "
        f"(took {total / 60:.1f} min)\n"
        "- Every figure is a median of repeated runs. Implementations compared in one table are timed "
        "in the same process, side by side: each round times every row once, in a shuffled order, and "
        "the rounds are repeated; rounds during which other processes kept more than a quarter of a "
        "core busy are thrown away (2-thread BLAS on 2 cores slows many times over when another "
        "process takes a core). A ratio is a median time divided by the reference's median time "
        "(1.10 = 10% slower). Every implementation is checked against matcalc's result (allclose) "
        "before it is timed.",
        "Other processes on the machine during each benchmark (cores kept busy, from /proc/stat "
        "less this process and its children):\n\n"
        + C.table(["benchmark", "took", "waited for quiet", "other processes, cores"], loads),
        "## Findings\n\nmatcalc slower than hand-written NumPy by more than 10%, or derivation "
        "time growing super-linearly:\n\n" + findings,
        *sections,
    ]) + "\n"
    path = C.BENCH / ("results-quick.md" if quick else "results.md")
    path.write_text(md)
    print(f"\nwrote {path} ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()
