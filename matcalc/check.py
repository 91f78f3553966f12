"""Numerical verification: derivatives against central finite differences.

Layer L4: imports numeric and sampling.  Inputs come from each symbol's
domain (sampling.py).  A point where the value is not finite is redrawn; if
none is found, the check says so instead of passing or failing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import expr as E
from .derive import grad
from .errors import LimitError
from .numeric import run_program
from .printing.text import to_text
from .sampling import dimension_sizes, opaque_functions, sample_inputs

__all__ = ["check_derivation", "check_gradient", "CheckReport", "dimension_sizes", "sample_inputs", "opaque_functions"]

TOLERANCE = 1e-5
STEP = 1e-6
ATTEMPTS = 20
# A variable with more entries is checked along random directions rather than
# entry by entry, so the work of a check does not grow with the declared sizes.
ENTRYWISE_UP_TO = 100
DIRECTIONS = 12
# The largest array a check may build (32 MB of float64): declared sizes past it
# are a limit error, not an out-of-memory crash.
MAX_ENTRIES = 4_000_000


@dataclass
class CheckReport:
    ok: bool
    worst_error: float
    per_variable: dict[str, float] = field(default_factory=dict)
    message: str = ""
    points: int = 0

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, printer, cycle) -> None:     # IPython and Jupyter show the message
        printer.text(self.message)


def check_derivation(derivation, seed: int = 0, points: int = 3) -> CheckReport:
    """Compare every result with central differences at `points` random points:
    a gradient against the value, a Jacobian against vec(value), a Hessian
    against the gradient (its own derivation, evaluated numerically)."""
    program = derivation.program
    rng = np.random.default_rng(seed)
    worst: dict[str, float] = {name: 0.0 for name in derivation.results}
    functions = opaque_functions(program)
    gradients = {name: grad(program, [name], keep_steps=False) for name in derivation.results} \
        if derivation.command == "hessian" else {}
    done = 0
    for _ in range(points):
        dims = dimension_sizes(program, rng)
        _within_limits(derivation, dims)
        env = _valid_point(program, rng, dims, functions)
        if env is None:
            break
        done += 1
        ev = run_program(program, env, functions, dims, derivation.adjoints)
        for name, result in derivation.results.items():
            analytic = ev(result)
            if derivation.command == "jacobian" and analytic.ndim == 2 and ev.env[name].size == 1:
                analytic = analytic.reshape(-1, 1, order="F")     # ∂F/∂α is shaped like F: its vec is J
            fixed = frozenset() if name in program.inputs else frozenset({name})
            point = {**env, name: ev.env[name]}     # an intermediate is perturbed with its definition held
            sym = program.inputs.get(name)
            symmetric = sym is not None and sym.symmetric
            x = point[name]
            if derivation.command == "grad" and analytic.shape != x.shape:
                worst[name] = float("inf")       # a result of the wrong shape fails, whatever its entries
                continue
            target = _gradient(gradients[name], functions, dims) if derivation.command == "hessian" \
                else _value(program, functions, dims)
            directions = _directions(x, symmetric) if x.size <= ENTRYWISE_UP_TO \
                else _random_directions(x, symmetric, rng)
            numeric = _jacobian_by_differences(target, point, name, fixed, directions)
            if derivation.command == "grad":
                if symmetric:     # symmetric directions cannot see an asymmetric part: test it directly
                    asymmetry = np.max(np.abs(analytic - analytic.T)) / max(1.0, np.max(np.abs(analytic)))
                    worst[name] = max(worst[name], float(asymmetry))
                analytic = analytic.reshape(1, -1, order="F")     # a gradient is a 1-row Jacobian
            analytic = analytic @ directions    # J d vec(X), along the directions taken
            if not (np.all(np.isfinite(analytic)) and np.all(np.isfinite(numeric))):
                err = float("inf")     # a NaN must fail the check, not vanish in max()
            else:
                err = np.max(np.abs(analytic - numeric)) / max(1.0, float(np.max(np.abs(numeric))))
            worst[name] = max(worst[name], float(err))
    if done == 0:
        return CheckReport(False, float("nan"), {}, "check: could not find a point where the expression "
                           f"is finite after {ATTEMPTS} random draws; nothing was verified", 0)
    top = max(worst.values()) if worst else 0.0
    ok = top <= TOLERANCE
    lines = [f"check: {'passed' if ok else 'FAILED'}: worst relative error {top:.2e} "
             f"(tolerance {TOLERANCE:.0e}) at {done} random point{'s' if done > 1 else ''}"]
    lines += [f"  d/d{name}: {err:.2e}" + ("  (not finite: NaN or infinity at a sampled point)"
                                           if err == float("inf") else "") for name, err in worst.items()]
    return CheckReport(ok, top, worst, "\n".join(lines), done)


check_gradient = check_derivation


def _value(program, functions, dims):
    def value_of(point, fixed=frozenset()):
        return run_program(program, point, functions, dims, fixed=fixed)(program.output)
    return value_of


def _gradient(g, functions, dims):
    def gradient_of(point, fixed=frozenset()):
        return run_program(g.program, point, functions, dims, g.adjoints, fixed=fixed)(g.result)
    return gradient_of


def _valid_point(program, rng, dims, functions):
    value_of = _value(program, functions, dims)
    for _ in range(ATTEMPTS):
        env = sample_inputs(program, rng, dims)
        if np.all(np.isfinite(value_of(env))):
            return env
    return None


def _within_limits(derivation, dims) -> None:
    """Refuse sizes whose arrays would not fit, before any is built."""
    program = derivation.program
    roots = [b for _, b in program.definitions] + [program.output] + \
        list(derivation.results.values()) + [b for _, b in derivation.named]
    seen: set = set()
    for root in roots:
        for n in E.walk(root):
            if n in seen:
                continue
            seen.add(n)
            sizes = [_size(d, dims) for d in n.shape]
            if sizes[0] * sizes[1] > MAX_ENTRIES:
                raise LimitError(f"--check would build a {sizes[0]:,}×{sizes[1]:,} array (for {_short(n)}), "
                                 f"more than the {MAX_ENTRIES:,} entries a check may use; check the same "
                                 "expression with smaller sizes, or with named dimensions such as "
                                 "matrix(m, n), which the check samples small")


def _size(d, dims) -> int:
    out = 1
    for part in str(d).split("*"):
        out *= int(part) if part.isdigit() else dims[part]
    return out


def _short(e) -> str:
    text = to_text(e)
    return text if len(text) <= 40 else text[:37] + "..."


def _random_directions(x: np.ndarray, symmetric: bool, rng) -> np.ndarray:
    """Columns vec(D) of DIRECTIONS random unit directions (symmetric ones for a symmetric X)."""
    columns = []
    for _ in range(DIRECTIONS):
        d = rng.standard_normal(x.shape)
        if symmetric:
            d = d + d.T
        columns.append((d / np.linalg.norm(d)).reshape(-1, order="F"))
    return np.stack(columns, axis=1)


def _directions(x: np.ndarray, symmetric: bool) -> np.ndarray:
    """Columns vec(D): every entry, or for a symmetric X the pairs E_ij + E_ji."""
    columns = []
    for idx in zip(*np.unravel_index(np.arange(x.size), x.shape, order="F")):
        if symmetric and idx[0] > idx[1]:
            continue
        d = np.zeros_like(x)
        d[idx] = 1.0
        if symmetric:
            d[idx[::-1]] = 1.0
        columns.append(d.reshape(-1, order="F"))
    return np.stack(columns, axis=1)


def _jacobian_by_differences(target, env, name, fixed, directions) -> np.ndarray:
    """The derivative of vec(target) along each column of `directions` (vec is column-major)."""
    x = env[name]
    columns = []
    for column in directions.T:
        direction = column.reshape(x.shape, order="F")
        h = STEP * max(1.0, float(np.max(np.abs(x))))
        plus = target({**env, name: x + h * direction}, fixed)
        minus = target({**env, name: x - h * direction}, fixed)
        columns.append(((plus - minus) / (2 * h)).reshape(-1, order="F"))
    return np.stack(columns, axis=1)
