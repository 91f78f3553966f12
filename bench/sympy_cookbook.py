"""SymPy's `.diff` against matcalc on the Matrix Cookbook rows; writes docs/sympy-comparison.md.

    python bench/sympy_cookbook.py        # about a minute; needs only matcalc's own dependencies

Every row of tests/test_cookbook.py, and a few classics (CLASSICS below), is
written as a SymPy matrix expression with matcalc.to_sympy, differentiated
with SymPy's `.diff(X)`, and both answers are compared with central finite
differences of the expression's value at random points of the row's domain
(SPD matrices under logdet/det/inv, as `--check` samples them).  SymPy's
answer is classified as

  agrees       equal to the finite differences;
  transposed   equal to their transpose and not to them: a layout slip, kept
               apart from "wrong" (SymPy's layout otherwise matches matcalc's,
               ∂L/∂X shaped like X);
  wrong        a number, and a different one;
  unevaluated  an object with no numerical value (Derivative, ArrayDerivative);
  error        `.diff` raises (the exception is named);
  no SymPy form  the expression has no SymPy matrix-expression form
               (elementwise functions of arrays, softmax, ...): nothing to compare.

A `symmetric(n)` variable S is a plain MatrixSymbol to SymPy, so SymPy's
answer is compared with the unconstrained finite differences G, and matcalc's
with sym(G) = (G + Gᵀ)/2, the gradient along symmetric directions
(docs/reference.md).  Before comparing, the SymPy expression's value is checked
against matcalc's at the same point, so a conversion slip cannot pass for a
SymPy bug.
"""
from __future__ import annotations

import signal
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
from sympy.tensor.array.expressions.from_array_to_matrix import convert_array_to_matrix

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matcalc  # noqa: E402
from matcalc.errors import MatcalcError  # noqa: E402
from matcalc.interop.sympy_numeric import Unevaluable, evaluate  # noqa: E402
from matcalc.numeric import Evaluator, run_program  # noqa: E402
from matcalc.sampling import dimension_sizes, sample_inputs  # noqa: E402
from tests.test_cookbook import ROWS  # noqa: E402

OUTPUT = ROOT / "docs" / "sympy-comparison.md"
CLASSES = ("agrees", "transposed", "wrong", "unevaluated", "error", "no SymPy form")
POINTS = 2
STEP = 1e-6
TOLERANCE = 1e-5          # relative to the largest entry, as --check uses
TIMEOUT = 60              # seconds for one SymPy .diff

# Classics beside the Cookbook rows: (id, expression, wrt, let).
CLASSICS = [
    ("classic-tr-inv", "tr(inv(X))", "X", {}),
    ("classic-tr-X5", "tr(X^5)", "X", {}),
    ("classic-had-trace", "tr(A*(X .* X))", "X", {}),
    ("classic-had-quad", "x'*(A .* X)*x", "X", {}),
    ("classic-had-sum", "sum(X .* X)", "X", {}),
    ("classic-had-frob", "A : (X .* B)", "X", {}),
    ("classic-logdet-XtAX", "logdet(X'*A*X)", "X", {"X": "matrix(n, n)", "A": "matrix(n, n)"}),
    ("classic-det-inv-A", "det(inv(X)*A)", "X", {}),
    ("classic-frob-quad", "norm2(A*X - B)^2", "X", {}),
    ("classic-tr-plus-det", "tr(X) + det(X)", "X", {}),
    ("classic-tr-plus-logdet", "tr(X) + logdet(X)", "X", {}),
]


@dataclass
class Row:
    rid: str
    expr: str
    wrt: str
    sympy_class: str
    sympy_result: str         # SymPy's answer, or the exception
    matcalc: str              # "ok", or what went wrong
    note: str = ""


# ----------------------------------------------------------------- numerics

def _finite_differences(program, env, dims, wrt) -> np.ndarray:
    """Central differences entry by entry: the unconstrained gradient."""
    def value(point):
        return run_program(program, point, dims=dims)(program.output).item()
    x = env[wrt]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        h = STEP * max(1.0, abs(x[idx]))
        step = np.zeros_like(x)
        step[idx] = h
        grad[idx] = (value({**env, wrt: x + step}) - value({**env, wrt: x - step})) / (2 * h)
    return grad


def _close(got, expected) -> bool:
    return (got.shape == expected.shape and bool(np.all(np.isfinite(got)))
            and float(np.max(np.abs(got - expected))) <= TOLERANCE * max(1.0, float(np.max(np.abs(expected)))))


def _points(program, seed: int):
    """(dims, env) at POINTS random points where the expression is finite."""
    rng = np.random.default_rng(seed)
    for _ in range(POINTS):
        dims = dimension_sizes(program, rng)
        for _attempt in range(20):
            env = sample_inputs(program, rng, dims)
            if np.all(np.isfinite(run_program(program, env, dims=dims)(program.output))):
                break
        yield dims, env


class _Timeout(Exception):
    pass


def _diff_with_timeout(e, x):
    def alarm(signum, frame):
        raise _Timeout(f"no answer within {TIMEOUT} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT)
    try:
        return e.diff(x)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------- one row

def _sympy_class(result, expected: np.ndarray, env, dims) -> tuple[str, str]:
    """(class, note) of SymPy's answer at one point."""
    try:
        got = evaluate(result, env, dims)
    except Unevaluable as exc:
        return "unevaluated", f"an unevaluated {exc.cls}"
    except Exception as exc:            # noqa: BLE001 - e.g. a shape SymPy got wrong
        return "wrong", f"cannot be evaluated: {type(exc).__name__}"
    note = ""
    if got.ndim != 2:                   # an array expression: drop its unit axes
        squeezed = np.squeeze(got)
        if squeezed.size == expected.size and squeezed.ndim <= 2:
            if squeezed.ndim < 2:
                squeezed = squeezed.reshape(expected.shape)
            got, note = squeezed, f"a {got.ndim}-index array; compared with its unit axes dropped"
    if got.shape == (1, 1) != expected.shape and got.item() == 0 and _close(np.zeros_like(expected), expected):
        return "agrees", "the scalar 0 for a zero matrix"
    if _close(got, expected):
        return "agrees", note
    if _close(got.T, expected):
        return "transposed", note
    if got.shape not in (expected.shape, expected.T.shape):
        return "wrong", f"shape {got.shape}, expected {expected.shape}"
    return "wrong", note


def _matcalc_status(program, wrt, points, symmetric: bool) -> str:
    try:
        d = matcalc.grad(program, wrt=wrt)
    except MatcalcError as exc:
        return f"{type(exc).__name__}: {exc.message}"
    for dims, env, fd in points:
        expected = (fd + fd.T) / 2 if symmetric else fd
        got = run_program(program, env, dims=dims, extra=d.adjoints)(d.result)
        if not _close(got, expected):
            return "FAILS finite differences"
    return "ok"


# Best first: a silently wrong number is worse than an answer SymPy admits it lacks.
_RANK = {c: i for i, c in enumerate(("agrees", "transposed", "unevaluated", "error", "wrong"))}


def classify(rid: str, expr: str, wrt: str, let: dict, seed: int = 0) -> Row:
    """Derive one row both ways and classify SymPy's answer."""
    def row(cls, result, status, note=""):
        return Row(rid, expr, wrt, cls, result, status, note)
    try:
        program = matcalc.parse(expr, let)
    except MatcalcError as exc:
        return row("no SymPy form", "", f"{type(exc).__name__}: {exc.message}",
                   "matcalc cannot parse it as declared, so there is no SymPy expression to build")
    symmetric = program.inputs[wrt].symmetric
    points = []
    for dims, env in _points(program, seed):
        points.append((dims, env, _finite_differences(program, env, dims, wrt)))
    status = _matcalc_status(program, wrt, points, symmetric)
    note = (f"{wrt} is symmetric: SymPy sees a general matrix (compared with G), matcalc gives sym(G)"
            if symmetric else "")
    try:
        e = matcalc.to_sympy(program)
    except MatcalcError as exc:
        return row("no SymPy form", exc.message, status, note)
    for dims, env, _ in points:            # the SymPy expression must have matcalc's value
        ours = Evaluator(env, dims=dims)(program.output)
        theirs = evaluate(e, env, dims)
        assert _close(theirs, ours), f"{rid}: to_sympy changed the value: {e}"
    x = matcalc.to_sympy(program.inputs[wrt])
    forms = _forms(e)
    outcomes = [_sympy_outcome(form, x, points) for _, form in forms]
    best = min(range(len(outcomes)), key=lambda i: _RANK[outcomes[i][0]])   # the form SymPy does best on
    cls, result, extra = outcomes[best]
    extra = "; ".join(n for n in (forms[best][0], extra) if n)
    return row(cls, result, status, "; ".join(n for n in (note, extra) if n))


def _forms(e) -> list[tuple[str, object]]:
    """(how, expression): the expression as matcalc built it; as SymPy's operators
    would have built it (`a.T*X*b` runs doit(), which can decide what .diff can do);
    and a scalar that to_sympy wrapped as Trace(1×1) also as the bare 1×1 matrix."""
    bases = [("", e)]
    if isinstance(e, sympy.Trace) and e.arg.shape == (1, 1):
        bases.append(("as a 1×1 matrix", e.arg))
    forms = []
    for how, base in bases:
        forms.append((how, base))
        try:
            canonical = base.doit()
        except Exception:               # noqa: BLE001 - then only the form as built
            continue
        if canonical != base:
            forms.append((", ".join(w for w in (how, "after .doit()") if w), canonical))
    return forms


def _sympy_outcome(e, x, points) -> tuple[str, str, str]:
    """(class, SymPy's answer, note) for one form of the expression."""
    try:
        result = _diff_with_timeout(e, x)
    except Exception as exc:                      # noqa: BLE001 - SymPy's failure is the finding
        return "error", f"{type(exc).__name__}: {str(exc)[:200]}", ""
    note = ""
    if type(result).__module__.startswith("sympy.tensor.array"):
        try:                             # SymPy's own way from an array expression to a matrix
            converted = convert_array_to_matrix(result)
        except Exception:                # noqa: BLE001 - then it is evaluated as an array
            converted = result
        if converted != result:
            result, note = converted, "an array expression; shown through convert_array_to_matrix"
    found = [_sympy_class(result, fd, env, dims) for dims, env, fd in points]
    cls, extra = max(found, key=lambda f: _RANK[f[0]])   # the worst point decides
    return cls, str(result), "; ".join(n for n in (note, extra) if n)


def all_rows() -> list[tuple[str, str, str, dict]]:
    return [r[:4] for r in ROWS] + CLASSICS


# ----------------------------------------------------------------- the table

def _cell(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def markdown(rows: list[Row]) -> str:
    counts = Counter(r.sympy_class for r in rows)
    lines = [
        "# SymPy's `.diff` on the Matrix Cookbook",
        "",
        f"Generated by `python bench/sympy_cookbook.py` with SymPy {sympy.__version__} and matcalc "
        f"{matcalc.__version__}; `tests/test_sympy_table.py` re-derives some rows and fails when this file "
        "disagrees with them.",
        "",
        "Each expression of `tests/test_cookbook.py` (and a few classics) is written as a SymPy matrix expression "
        "(`matcalc.to_sympy`), differentiated with `.diff(X)`, and SymPy's answer is evaluated at "
        f"{POINTS} random points of the row's domain (SPD matrices under logdet/det/inv) and compared with "
        f"central finite differences (relative tolerance {TOLERANCE:g}). matcalc's answer is checked the "
        "same way.",
        "",
        "- **agrees**: equal to the finite differences.",
        "- **transposed**: equal to their transpose only — a layout slip, counted apart from *wrong*.",
        "- **wrong**: evaluates to different numbers.",
        "- **unevaluated**: returns an object with no numerical value (a `Derivative`, an `ArrayDerivative`).",
        "- **error**: `.diff` raises; the exception is given.",
        "- **no SymPy form**: the expression cannot be written as a SymPy matrix expression "
        "(elementwise functions of arrays, softmax, ...), so there is nothing to compare.",
        "",
        "A `symmetric(n)` variable is a plain `MatrixSymbol` to SymPy: its answer is compared with the "
        "unconstrained gradient G, matcalc's with sym(G) = (G + Gᵀ)/2.",
        "",
        "| class | rows |",
        "|---|---|",
        *[f"| {c} | {counts.get(c, 0)} |" for c in CLASSES],
        f"| total | {len(rows)} |",
        "",
        "| id | expression | wrt | class | SymPy's answer | matcalc | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.rid} | {_cell(r.expr, 50)} | {r.wrt} | {r.sympy_class} | {_cell(r.sympy_result)} "
                     f"| {r.matcalc if r.matcalc == 'ok' else _cell(r.matcalc, 60)} | {r.note} |")
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> dict[str, str]:
    """id -> class, read back from the generated markdown."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) >= 7 and cells[3] in CLASSES:
            out[cells[0].lstrip("| ")] = cells[3]
    return out


def main() -> None:
    warnings.simplefilter("ignore")      # SymPy's deprecation notes from inside its own .diff
    rows = []
    for rid, expr, wrt, let in all_rows():
        r = classify(rid, expr, wrt, let)
        print(f"{rid:24} {r.sympy_class:14} {r.matcalc[:40]:40} {r.sympy_result[:60]}", flush=True)
        rows.append(r)
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(markdown(rows), "utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: " + ", ".join(f"{c} {n}" for c, n in Counter(
        r.sympy_class for r in rows).most_common()))


if __name__ == "__main__":
    main()
