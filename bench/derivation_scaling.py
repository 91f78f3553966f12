"""Derivation time as the input grows, with SymPy 1.14 beside it.

Two families, sizes 1, 2, 4, ..., 128:

- an L-layer tanh network, `h0 = x`, then `a_k = W_k*h_{k-1} + b_k` and
  `h_k = tanh(a_k)` for k = 1..L, then `L = norm2(h_L - y)^2`, differentiated
  with respect to every W_k and b_k in one matcalc.grad call;
- the trace chain `tr(A1*X*A2*X*...*Ak*X)` with respect to X (written out, its
  gradient has k terms of k factors each; matcalc names the suffix products,
  engine/chains.py, so the printed result grows as k).

For each size: the median time of matcalc.grad (parsing included), the length of
the printed result (len(d.text())), the time of code generation (d.numpy()) and
the length of the generated module, and the doubling ratios time(2L)/time(L).
SymPy runs the trace chain up to k = 64 (MatrixSymbol, Trace(...).diff(X)) and the
network at depth 1 and 2, each case in a subprocess with a 60 s limit; inside
that subprocess matcalc is timed side by side on the same case, so the ratio is
taken within one process.

    python bench/derivation_scaling.py [--quick]
    python bench/derivation_scaling.py --profile      cProfile of the slowest cases
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C

import matcalc

SIZES = [1, 2, 4, 8, 16, 32, 64, 128]
SYMPY_CHAIN_MAX = 64
SYMPY_TIMEOUT = 60.0
SUPERLINEAR = 2.5      # a doubling ratio above this at the largest sizes is flagged


def mlp_program(depth: int) -> tuple[str, list[str]]:
    lines = ["h0 = x"]
    for k in range(1, depth + 1):
        lines += [f"a{k} = W{k}*h{k - 1} + b{k}", f"h{k} = tanh(a{k})"]
    lines.append(f"L = norm2(h{depth} - y)^2")
    wrt = [f"W{k}" for k in range(1, depth + 1)] + [f"b{k}" for k in range(1, depth + 1)]
    return "\n".join(lines), wrt


def chain_expr(k: int) -> str:
    return "tr(" + "*".join(f"A{i}*X" for i in range(1, k + 1)) + ")"


def case(family: str, size: int) -> tuple[str, list[str]]:
    return mlp_program(size) if family == "mlp" else (chain_expr(size), ["X"])


def _repeats(first: float, quick: bool) -> int:
    if quick:
        return 1
    return 7 if first < 0.2 else 5 if first < 1.0 else 3


def time_matcalc(family: str, size: int, quick: bool) -> dict:
    text, wrt = case(family, size)
    t = time.perf_counter()
    d = matcalc.grad(text, wrt=wrt)
    first = time.perf_counter() - t
    t = time.perf_counter()
    code = d.numpy()
    first_code = time.perf_counter() - t
    derive, codegen = [first], [first_code]
    for _ in range(_repeats(max(first, first_code), quick) - 1):
        t = time.perf_counter()
        d = matcalc.grad(text, wrt=wrt)
        derive.append(time.perf_counter() - t)
        t = time.perf_counter()
        code = d.numpy()
        codegen.append(time.perf_counter() - t)
    return {"derive": C.median(derive), "runs": len(derive), "codegen": C.median(codegen),
            "text_len": len(d.text()), "code_len": len(code)}


# ------------------------------------------------------------------ the SymPy worker (a subprocess)

def _sympy_chain(k: int) -> dict:
    import numpy as np
    import sympy as sp
    from sympy.core.cache import clear_cache

    n = sp.Symbol("n")
    X = sp.MatrixSymbol("X", n, n)

    def build(m):
        As = [sp.MatrixSymbol(f"A{i}", n, n) for i in range(1, m + 1)]
        return As, sp.Trace(sp.MatMul(*[f for A in As for f in (A, X)]))

    build(1)[1].diff(X)                                   # warm-up: sympy's lazy imports
    matcalc.grad(chain_expr(1), wrt="X").text()
    clear_cache()

    t = time.perf_counter()
    d = matcalc.grad(chain_expr(k), wrt="X")
    t_matcalc = time.perf_counter() - t
    As, tr = build(k)
    t = time.perf_counter()
    result = tr.diff(X)
    t_sympy = time.perf_counter() - t
    out = {"matcalc": t_matcalc, "sympy": t_sympy, "sympy_len": len(str(result)),
           "matcalc_len": len(d.text()), "agree": None}
    if k <= 8:                                            # both results, evaluated at random matrices
        rng = np.random.default_rng(k)
        vals = {f"A{i}": rng.standard_normal((5, 5)) for i in range(1, k + 1)}
        vals["X"] = rng.standard_normal((5, 5))
        f = sp.lambdify([X] + As, result, "numpy")
        mine = d.function().grad_X(**vals)
        theirs = f(vals["X"], *[vals[f"A{i}"] for i in range(1, k + 1)])
        out["agree"] = bool(np.allclose(mine, theirs))
    return out


def _sympy_mlp(depth: int) -> dict:
    import sympy as sp

    hs, ds = sp.symbols("h d")
    x, y = sp.MatrixSymbol("x", ds, 1), sp.MatrixSymbol("y", hs, 1)
    hk, prev, wrt = x, ds, []
    for k in range(1, depth + 1):
        W, b = sp.MatrixSymbol(f"W{k}", hs, prev), sp.MatrixSymbol(f"b{k}", hs, 1)
        wrt += [W, b]
        hk, prev = (W * hk + b).applyfunc(sp.tanh), hs
    r = hk - y
    forms = {"(r.T*r)": r.T * r, "Trace(r.T*r)": sp.Trace(r.T * r), "(r.T*r)[0, 0]": (r.T * r)[0, 0]}
    out = {}
    for form, loss in forms.items():
        for v in sorted(wrt, key=lambda s: (s.name[0] != "W", s.name)):
            t = time.perf_counter()
            try:
                g = loss.diff(v)
                text = str(g)
                if g == 0 or getattr(g, "is_ZeroMatrix", False):
                    what = f"returns {type(g).__name__} `{text}`: wrong, the gradient is not zero"
                else:
                    what = f"returns an unevaluated {type(g).__name__} ({len(text):,} chars)"
            except Exception as e:  # noqa: BLE001 - reporting what SymPy does is the point
                what = f"error: {type(e).__name__}: {str(e).splitlines()[0][:70]}"
            out[f"{form}|{v.name}"] = {"what": what, "time": time.perf_counter() - t}
    t = time.perf_counter()
    text, names = mlp_program(depth)
    d = matcalc.grad(text, wrt=names)
    out["matcalc"] = {"time": time.perf_counter() - t, "text": d.text()}
    return out


def _worker(kind: str, size: int) -> None:
    out = _sympy_chain(size) if kind == "chain" else _sympy_mlp(size)
    print(json.dumps(out))


def run_sympy(kind: str, size: int) -> dict | None:
    """One case in a subprocess; None where it ran over SYMPY_TIMEOUT."""
    cmd = [sys.executable, os.path.abspath(__file__), "--sympy-worker", kind, str(size)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=SYMPY_TIMEOUT, cwd=C.ROOT,
                           check=False)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ report

def _doubling(values: list[float]) -> list[str]:
    return ["-"] + [f"{b / a:.2f}" for a, b in itertools.pairwise(values)]


def scaling_table(family: str, results: dict[int, dict]) -> str:
    sizes = sorted(results)
    d = _doubling([results[s]["derive"] for s in sizes])
    c = _doubling([results[s]["codegen"] for s in sizes])
    rows = [[s, results[s]["runs"], C.seconds(results[s]["derive"]), d[i], f"{results[s]['text_len']:,}",
             C.seconds(results[s]["codegen"]), c[i], f"{results[s]['code_len']:,}"]
            for i, s in enumerate(sizes)]
    head = "L (layers)" if family == "mlp" else "k"
    return C.table([head, "runs", "matcalc.grad median", "× per doubling", "len(d.text())",
                    "d.numpy() median", "× per doubling", "len(d.numpy())"], rows)


def sympy_chain_table(rows_in: dict[int, list]) -> str:
    rows = []
    for k, runs in sorted(rows_in.items()):
        if any(r is None for r in runs):
            rows.append([k, len(runs), "timeout", f"> {SYMPY_TIMEOUT:.0f} s", "-", "-", "-"])
            continue
        if any("error" in r for r in runs):
            rows.append([k, len(runs), "error", next(r["error"] for r in runs if "error" in r), "-", "-", "-"])
            continue
        tm = C.median([r["matcalc"] for r in runs])
        ts = C.median([r["sympy"] for r in runs])
        agree = runs[0]["agree"]
        rows.append([k, len(runs), C.seconds(tm), C.seconds(ts), f"{ts / tm:.1f}",
                     f"{runs[0]['sympy_len']:,} / {runs[0]['matcalc_len']:,}",
                     "-" if agree is None else "yes" if agree else "NO"])
    return C.table(["k", "runs", "matcalc", "SymPy", "SymPy ÷ matcalc", "len(str) SymPy / matcalc",
                    "agree numerically"], rows)


def sympy_mlp_table(results: dict[int, dict | None]) -> str:
    rows = []
    for depth, out in sorted(results.items()):
        if out is None:
            rows.append([depth, "all", "timeout", "-"])
            continue
        if "error" in out:
            rows.append([depth, "all", out["error"], "-"])
            continue
        for key, val in out.items():
            if key == "matcalc":
                continue
            form, var = key.split("|")
            rows.append([depth, f"`{form}`.diff({var})", val["what"], C.seconds(val["time"])])
        rows.append([depth, "matcalc.grad, every W_k and b_k", "`" + out["matcalc"]["text"].replace("\n", "; ")
                     + "`", C.seconds(out["matcalc"]["time"])])
    return C.table(["depth", "call", "result", "time"], rows, "rllr")


def run(quick: bool = False) -> dict:
    sizes = SIZES[:6] if quick else SIZES
    parts, flags = [], []
    scaling = {}
    for family in ("mlp", "chain"):
        scaling[family] = {}
        for s in sizes:
            scaling[family][s] = r = time_matcalc(family, s, quick)
            print(f"{family} {s}: derive {C.seconds(r['derive'])}, codegen {C.seconds(r['codegen'])}, "
                  f"text {r['text_len']}, code {r['code_len']}", flush=True)
    title = {"mlp": "L-layer tanh network, gradient wrt every W_k and b_k",
             "chain": "Trace chain tr(A1*X*...*Ak*X), gradient wrt X"}
    for family in ("mlp", "chain"):
        parts.append(f"### {title[family]}\n\n" + scaling_table(family, scaling[family]))
        for what, label in (("derive", "matcalc.grad"), ("codegen", "d.numpy()")):
            big = sizes[-3:]
            ratios = [scaling[family][b][what] / scaling[family][a][what] for a, b in itertools.pairwise(big)]
            size_key = "text_len" if what == "derive" else "code_len"
            grows = [scaling[family][b][size_key] / scaling[family][a][size_key] for a, b in itertools.pairwise(big)]
            if ratios and min(ratios) > SUPERLINEAR:
                flags.append(f"{title[family]}: {label} time grows super-linearly, × "
                             + ", ".join(f"{r:.2f}" for r in ratios)
                             + f" per doubling at sizes {', '.join(map(str, big))} (its output, "
                             + ("len(d.text())" if what == "derive" else "len(d.numpy())") + ", grows × "
                             + ", ".join(f"{g:.2f}" for g in grows) + ")")

    chain = {}
    for k in [s for s in sizes if s <= SYMPY_CHAIN_MAX]:
        first = run_sympy("chain", k)
        runs = [first]
        if first is not None and "error" not in first and not quick:
            runs += [run_sympy("chain", k) for _ in range(2 if first["sympy"] < 10 else 0)]
        chain[k] = runs
        print(f"sympy chain {k}: {runs[0] if runs[0] else 'timeout'}", flush=True)
        if first is None:                                 # a larger k will not be faster
            for rest in [s for s in sizes if k < s <= SYMPY_CHAIN_MAX]:
                chain[rest] = [None]
            break
    parts.append("### SymPy beside matcalc: the trace chain\n\n"
                 f"Each run in a fresh subprocess (limit {SYMPY_TIMEOUT:.0f} s), SymPy's cache cleared, "
                 "matcalc timed in the same process; `Trace(A1*X*...*Ak*X).diff(X)` with "
                 "`MatrixSymbol`s of symbolic size n. Results checked against each other at random "
                 "5×5 matrices for k ≤ 8.\n\n" + sympy_chain_table(chain))

    mlp = {depth: run_sympy("mlp", depth) for depth in (1, 2)}
    parts.append("### SymPy beside matcalc: the network at depth 1 and 2\n\n"
                 "SymPy has no norm2 of a matrix expression: the loss is written three ways, with "
                 "`r = tanh.(W_L*...*tanh.(W1*x + b1) ... + b_L) - y` built from `MatrixSymbol`s "
                 "and `.applyfunc(tanh)`.\n\n" + sympy_mlp_table(mlp))
    return {"markdown": "## Derivation time\n\n" + "\n\n".join(parts), "flags": flags}


def profile(top: int = 20) -> None:
    """cProfile of the slowest cases: the k = 64 trace chain's derivation and the
    128-layer network's code generation."""
    import cProfile
    import io
    import pstats

    def show(label, fn):
        pr = cProfile.Profile()
        pr.enable()
        fn()
        pr.disable()
        for order in ("cumulative", "tottime"):
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats(order).print_stats(top)
            print(f"==== {label}, sorted by {order}\n" + s.getvalue())

    show("matcalc.grad(tr(A1*X*...*A64*X), wrt='X')", lambda: matcalc.grad(chain_expr(64), wrt="X"))
    text, wrt = mlp_program(128)
    d = matcalc.grad(text, wrt=wrt)
    show("d.numpy() for the 128-layer network", d.numpy)


def main(argv=None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sympy-worker"]:
        _worker(argv[1], int(argv[2]))
        return None
    if "--profile" in argv:
        profile()
        return None
    out = run(quick="--quick" in argv)
    print(out["markdown"])
    for f in out["flags"]:
        print("SUPER-LINEAR:", f)
    return out


if __name__ == "__main__":
    main()
