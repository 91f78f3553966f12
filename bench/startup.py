"""Start-up cost: the wall time of a whole `matcalc grad` command and of
`import matcalc`, against `python -c "import numpy"` as the peer (matcalc
imports NumPy, so that is its floor), each a median of 10 runs, interleaved; and
whether `import matcalc` (or the command) brings in SymPy, which it must not.

    python bench/startup.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C

REPEATS = 10
PY = sys.executable
HEAVY = ("sympy", "scipy", "mpmath", "jax", "torch", "pandas", "numba")


def _cli() -> list[str]:
    exe = shutil.which("matcalc")
    return [exe] if exe else [PY, "-m", "matcalc"]


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=C.ROOT)
    return time.perf_counter() - t


def importtime(code: str) -> tuple[float, dict[str, tuple[int, int, int]], dict[str, list[tuple[int, str]]]]:
    """Run python -X importtime -c code: (sum of every module's own time in s,
    {module: (self µs, cumulative µs, depth)}, {top-level module: [(cumulative µs, child)]})."""
    p = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True, text=True,
                       check=True, cwd=C.ROOT)
    mods: dict[str, tuple[int, int, int]] = {}
    children: dict[str, list[tuple[int, str]]] = {}
    pending: list[tuple[int, str]] = []
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, raw = line[len("import time:"):].split("|")
        depth = (len(raw) - len(raw.lstrip()) - 1) // 2
        name = raw.strip()
        mods[name] = (int(self_us), int(cum_us), depth)
        if depth == 1:
            pending.append((int(cum_us), name))      # children are printed before their parent
        elif depth == 0:
            children[name], pending = sorted(pending, reverse=True), []
    return sum(v[0] for v in mods.values()) / 1e6, mods, children


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else REPEATS
    cli = _cli()
    grad_cmd = cli + ["grad", "x'*A*x", "--wrt", "x"]
    walls = [("`matcalc grad \"x'*A*x\" --wrt x`", grad_cmd),
             ("`python -c \"import matcalc\"`", [PY, "-c", "import matcalc"]),
             ("`python -c \"import numpy\"` (peer)", [PY, "-c", "import numpy"]),
             ("`python -c \"pass\"` (the interpreter alone)", [PY, "-c", "pass"])]
    out = subprocess.run(grad_cmd, capture_output=True, text=True, cwd=C.ROOT, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "(A + A')*x", (out.returncode, out.stdout, out.stderr)
    times = {name: [] for name, _ in walls}
    for _, cmd in walls:                                   # warm the file cache
        _wall(cmd)
    for _ in range(repeats):
        for name, cmd in walls:
            times[name].append(_wall(cmd))
    peer = C.median(times[walls[2][0]])
    rows = [[name, C.seconds(C.median(times[name])), C.spread(times[name]),
             f"{C.median(times[name]) / peer:.2f}"] for name, _ in walls]
    wall_table = C.table(["command", "median wall", "spread (IQR)", "÷ import numpy"], rows)

    it = {"matcalc": ([], []), "numpy": ([], [])}
    mods_mc: dict = {}
    for _ in range(repeats):
        for name in it:
            total, mods, _ = importtime(f"import {name}")
            it[name][0].append(total)
            it[name][1].append(mods[name][1] / 1e6)
            if name == "matcalc":
                mods_mc = mods
    npy_total, npy_cum = C.median(it["numpy"][0]), C.median(it["numpy"][1])
    rows = [[f"`import {name}`" + (" (peer)" if name == "numpy" else ""),
             C.seconds(C.median(tot)), f"{C.median(tot) / npy_total:.2f}",
             C.seconds(C.median(cum)), f"{C.median(cum) / npy_cum:.2f}"] for name, (tot, cum) in it.items()]
    import_table = C.table(["`python -X importtime -c ...`", "median sum of all self times", "÷ numpy",
                            "median cumulative of the package", "÷ numpy"], rows)
    numpy_share = sum(v[0] for k, v in mods_mc.items() if k == "numpy" or k.startswith("numpy."))
    own = sum(v[0] for k, v in mods_mc.items() if k == "matcalc" or k.startswith("matcalc."))
    deps = ", ".join(f"`{k}` {mods_mc[k][1] / 1e3:.1f} ms" for k in ("numpy", "lark", "regex") if k in mods_mc)
    slow = sorted(((v[0], k) for k, v in mods_mc.items() if k.startswith("matcalc")), reverse=True)[:5]
    breakdown = (f"In the last `import matcalc` run: matcalc's own modules {own / 1e3:.1f} ms (self times), "
                 f"NumPy's {numpy_share / 1e3:.1f} ms; third-party packages (cumulative): {deps}; "
                 "slowest matcalc modules (self time): "
                 + ", ".join(f"`{k}` {us / 1e3:.1f} ms" for us, k in slow) + ".")

    probe = f"import sys, matcalc; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    heavy_import = subprocess.run([PY, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    cli_it = subprocess.run([PY, "-X", "importtime", "-m", "matcalc", "grad", "x'*A*x", "--wrt", "x"],
                            capture_output=True, text=True, cwd=C.ROOT, check=False).stderr
    heavy_cli = sorted({m for m in HEAVY for line in cli_it.splitlines()
                        if line.startswith("import time:") and line.split("|")[-1].strip() == m})
    flags = []
    if "sympy" in heavy_import.split(",") or "sympy" in heavy_cli:
        flags.append("`import matcalc` (or the command) imports sympy")
    sympy_line = (f"- `import matcalc` imports sympy: **{'yes' if 'sympy' in heavy_import.split(',') else 'no'}**"
                  f" (heavy packages in sys.modules after `import matcalc`: {heavy_import or 'none'} — "
                  f"checked for {', '.join(HEAVY)})\n"
                  f"- `python -m matcalc grad \"x'*A*x\" --wrt x` imports: "
                  f"{', '.join(heavy_cli) or 'none of them'}")
    md = ("## Start-up\n\n"
          f"Median of {repeats} runs each, interleaved; the command's output checked to be `(A + A')*x`.\n\n"
          + wall_table + "\n\n" + import_table + "\n\n" + breakdown + "\n\n" + sympy_line)
    print(md, flush=True)
    return {"markdown": md, "flags": flags}


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    out = run(quick="--quick" in argv)
    for f in out["flags"]:
        print("FLAG:", f)
    return out


if __name__ == "__main__":
    main()
