"""Numerical verification, independent of the derivation it checks.

Layer L4: imports numeric and sampling (and, lazily, the code printer).  At each
of a few random points (sizes varied from 1 up, inputs from each symbol's
domain: sampling.py) every result is compared with finite differences of the
input's own value, never with another of matcalc's results:
  * a gradient or Jacobian with central differences, Richardson-extrapolated
    from two steps, whose disagreement estimates their error;
  * a Hessian with second differences of the value along pairs of directions;
  * the generated NumPy module's value and derivatives the same way.
Errors are relative per entry, beyond the estimated error of the differences,
so a derivative of size 1e-6 is judged against 1e-6, not against 1.
A point where the value is not finite is redrawn; if none is found, the check
says so instead of passing or failing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from . import expr as E
from .errors import LimitError, UnsupportedError
from .numeric import Evaluator, from_user, run_program, to_user
from .printing.text import to_text
from .sampling import dimension_sizes, opaque_functions, sample_inputs

__all__ = ["check_derivation", "check_gradient", "CheckReport", "dimension_sizes", "sample_inputs", "opaque_functions"]

TOLERANCE = 1e-5        # relative error per entry, beyond the differences' own error estimate
STEP = 1e-4             # first differences: Richardson from h and 2h
STEP2 = 1e-3            # second differences (Hessians)
ROUNDING = 64 * np.finfo(float).eps    # rounding of one evaluation, relative to its magnitude
NEGLIGIBLE = 1e-8       # entries below this fraction of the largest are judged against that fraction
ATTEMPTS = 20
# A variable with more entries is checked along random directions rather than
# entry by entry, so the work of a check does not grow with the declared sizes.
ENTRYWISE_UP_TO = 100
DIRECTIONS = 12
HESSIAN_ENTRYWISE_UP_TO = 6      # Hessians: pairs of directions cost the square
HESSIAN_DIRECTIONS = 5
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
    generated: dict[str, float] = field(default_factory=dict)    # the generated module's value and derivatives

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, printer, cycle) -> None:     # IPython and Jupyter show the message
        printer.text(self.message)


def check_derivation(derivation, seed: int = 0, points: int = 3, run_code: bool = True) -> CheckReport:
    """Compare every result with finite differences of the value at `points` random
    points: a gradient and a Jacobian with first differences, a Hessian with second
    differences.  With run_code (and a derivation that generates code) the
    generated NumPy module's value and derivatives are compared too."""
    program = derivation.program
    rng = np.random.default_rng(seed)
    worst: dict[str, float] = {name: 0.0 for name in derivation.results}
    functions = opaque_functions(program, salt=seed)
    module, code_note = _generated(derivation) if run_code else (None, "")
    generated: dict[str, float] = {}
    done = 0
    for i in range(points):
        dims = dimension_sizes(program, rng, point=i)     # distinct sizes, then 1 and 2, then any
        _within_limits(derivation, dims)
        env = _valid_point(program, rng, dims, functions)
        if env is None:
            continue          # these sizes may be the obstacle (a Gram product of a wide factor)
        done += 1
        # a differential is checked along one random direction dX per variable
        shape_of = {name: _array_shape(program, name, dims, functions) for name in derivation.results} \
            if derivation.command == "differential" else {}
        toward = {name: _random_directions(np.zeros(shape), _symmetric(program, name), rng, 1)
                  for name, shape in shape_of.items()}
        along = {f"d{name}": column.reshape(shape_of[name], order="F") for name, column in toward.items()}
        ev = run_program(program, {**env, **along}, functions, dims, derivation.adjoints)
        value_of = _value(program, functions, dims)
        terms = _terms(program, env, functions, dims)
        code = _run_module(module, program, env, functions, derivation, along) if module is not None else None
        if code is not None:
            code_value, code = code
            generated["value"] = max(generated.get("value", 0.0), _value_error(code_value, ev, program))
        if code is not None and derivation.hvp:
            generated["hvp"] = max(generated.get("hvp", 0.0),
                                   _hvp_error(module, derivation.wrt, program, env, functions, value_of, terms, rng))
        for name, result in derivation.results.items():
            pair = derivation.blocks.get(name)      # a Hessian block ∂²L/∂X∂Y: both perturbed
            fixed = frozenset(n for n in (pair or (name,)) if n not in program.inputs)
            point = {**env, **{n: ev.env[n] for n in (pair or (name,))}}   # an intermediate: its definition held
            symmetric = _symmetric(program, name)
            compare = _along(toward[name]) if toward else _block(*pair, *map(partial(_symmetric, program), pair)) if pair else _COMPARE[derivation.command]
            candidates = [ev(result)] + ([code.get(name)] if code is not None else [])
            errors = compare(candidates, point, name, fixed, symmetric, value_of, terms, rng)
            worst[name] = max(worst[name], errors[0])
            if code is not None:
                label = f"{_function_prefix(derivation)}_{name}"
                generated[label] = max(generated.get(label, 0.0), errors[1])
    if done == 0:
        return CheckReport(False, float("nan"), {}, "check: could not find a point where the expression "
                           f"is finite after {ATTEMPTS} random draws; nothing was verified", 0)
    top = max(list(worst.values()) + list(generated.values())) if worst else 0.0
    ok = top <= TOLERANCE
    lines = [f"check: {'passed' if ok else 'FAILED'}: worst relative error {top:.2e} "
             f"(tolerance {TOLERANCE:.0e}) at {done} random point{'s' if done > 1 else ''}"]
    lines += [f"  d/d{name}: {err:.2e}" + _note(err) for name, err in worst.items()]
    lines += [f"  generated {label}: {err:.2e}" + _note(err) for label, err in generated.items()]
    if code_note:
        lines.append(f"  ({code_note})")
    return CheckReport(ok, top, worst, "\n".join(lines), done, generated)


check_gradient = check_derivation


def _note(err: float) -> str:
    return "  (not finite: NaN or infinity at a sampled point)" if err == float("inf") else ""


# ------------------------------------------------------------ comparisons
# Each takes candidate values of one result at the point (2-D, as the IR sees it: the
# result evaluated, and the generated code's) and returns for each the worst relative
# error of the entries compared; a result of the wrong shape (or None: the code raised)
# is inf.  The differences are computed once, for all candidates.
# `terms` is the largest magnitude the value's evaluation meets: its rounding error
# (1 - tanh(u)^2 near 1 loses all digits of a tiny derivative) scales with that, not
# with the value.

def _compare_gradient(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    directions = _directions_for(x, symmetric, rng)
    numeric = None
    errors = []
    for analytic in candidates:
        if analytic is None or analytic.shape != x.shape:
            errors.append(float("inf"))       # a result of the wrong shape fails, whatever its entries
            continue
        if numeric is None:
            numeric, noise = _first_differences(value_of, point, name, fixed, directions, terms)
        # symmetric directions cannot see an asymmetric part: test it directly
        err = _relative(analytic, analytic.T) if symmetric else 0.0
        errors.append(max(err, _discrepancy(analytic.reshape(1, -1, order="F") @ directions, numeric, noise)))
    return errors


def _compare_jacobian(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    directions = _directions_for(x, symmetric, rng)
    numeric, noise = _first_differences(value_of, point, name, fixed, directions, terms)
    shape = value_of(point, fixed).shape if x.size == 1 else None

    def as_jacobian(analytic):
        # ∂F/∂α has F's shape (a scalar variable): its vec is the Jacobian
        if analytic is not None and shape is not None and analytic.shape == shape:
            return analytic.reshape(-1, 1, order="F")
        return analytic
    return [_discrepancy(a @ directions, numeric, noise)
            if a is not None and a.shape == (numeric.shape[0], x.size) else float("inf")
            for a in map(as_jacobian, candidates)]


def _compare_hessian(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
    x = point[name]
    if x.size <= HESSIAN_ENTRYWISE_UP_TO:
        directions = _directions(x, symmetric)
    else:
        directions = _random_directions(x, symmetric, rng, HESSIAN_DIRECTIONS)
    numeric = None
    errors = []
    for analytic in candidates:
        if analytic is None or analytic.shape != (x.size, x.size):
            errors.append(float("inf"))
            continue
        if numeric is None:
            numeric, noise = _second_differences(value_of, point, name, fixed, directions, terms)
        # a Hessian is a symmetric matrix; tested directly, since by a symmetric S the
        # (symmetric) directions of the differences see only H + Hᵀ
        errors.append(max(_relative(analytic, analytic.T),
                          _discrepancy(directions.T @ analytic @ directions, numeric, noise)))
    return errors


def _along(direction: np.ndarray):
    """The comparison of a differential df (evaluated along `direction`, a column vec(dX))
    with the first difference of the value along it."""
    def compare(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
        numeric, noise = _first_differences(value_of, point, name, fixed, direction, terms)
        return [_discrepancy(a.reshape(-1, 1, order="F"), numeric, noise)
                if a is not None and a.size == numeric.shape[0] else float("inf") for a in candidates]
    return compare


def _block(x_name: str, y_name: str, x_symmetric: bool, y_symmetric: bool):
    """The comparison of a Hessian block ∂²L/∂vec(X)∂vec(Y) with mixed second differences
    of the value along pairs of directions, one in X and one in Y."""
    def compare(candidates, point, name, fixed, symmetric, value_of, terms, rng) -> list[float]:
        x, y = point[x_name], point[y_name]
        U, V = (_random_directions(z, sym, rng, HESSIAN_DIRECTIONS) if z.size > HESSIAN_ENTRYWISE_UP_TO
                else _directions(z, sym) for z, sym in ((x, x_symmetric), (y, y_symmetric)))
        numeric, noise = np.zeros((U.shape[1], V.shape[1])), np.zeros((U.shape[1], V.shape[1]))
        for i, u in enumerate(U.T):
            for j, v in enumerate(V.T):
                numeric[i, j], noise[i, j] = _mixed_difference(
                    value_of, point, fixed, {x_name: u.reshape(x.shape, order="F")},
                    {y_name: v.reshape(y.shape, order="F")}, terms)
        return [_discrepancy(U.T @ a @ V, numeric, noise) if a is not None and a.shape == (x.size, y.size)
                else float("inf") for a in candidates]
    return compare


def _mixed_difference(value_of, point, fixed, u: dict, v: dict, terms=0.0) -> tuple[float, float]:
    """d²L(point + s u + t v)/ds dt at 0 (u, v: name -> direction), by four-point mixed
    differences Richardson-extrapolated from h and 2h, and an estimate of its error."""
    scale = max([1.0] + [float(np.max(np.abs(point[n]), initial=0.0)) for n in set(u) | set(v)])
    h = STEP2 * scale

    def f(a, b):
        moved = {n: point[n] + a * u.get(n, 0.0) + b * v.get(n, 0.0) for n in set(u) | set(v)}
        return float(value_of({**point, **moved}, fixed).item())
    est, size = {}, terms
    for k in (1, 2):
        values = [f(k * h, k * h), f(k * h, -k * h), f(-k * h, k * h), f(-k * h, -k * h)]
        est[k] = (values[0] - values[1] - values[2] + values[3]) / (4 * (k * h) ** 2)
        size = max(size, max(abs(x) for x in values))
    return (4 * est[1] - est[2]) / 3, abs(est[1] - est[2]) + ROUNDING * size / h ** 2


def _hvp_error(module, names, program, env, functions, value_of, terms, rng, pairs: int = 3) -> float:
    """The generated hvp along random directions v (every variable at once), read with
    random u: Σ_X ⟨u_X, hvp_X(v)⟩ against the mixed second difference of the value along u, v."""
    worst = 0.0
    args = [to_user(env[n], s.shape) for n, s in program.inputs.items()]
    opaque = sorted(program.functions)
    args += [functions[f] for f in opaque] + [functions["grad_" + f] for f in opaque]
    for _ in range(pairs):
        u = {n: _random_directions(env[n], _symmetric(program, n), rng, 1).reshape(env[n].shape, order="F")
             for n in names}
        v = {n: _random_directions(env[n], _symmetric(program, n), rng, 1).reshape(env[n].shape, order="F")
             for n in names}
        try:
            with np.errstate(all="ignore"):
                got = module.hvp(*args, *[to_user(v[n], program.inputs[n].shape) for n in names])
            analytic = sum(float(np.sum(u[n] * from_user(g, program.inputs[n].shape))) for n, g in zip(names, got))
        except Exception:        # noqa: BLE001 -- whatever the generated code raises is a failed check
            return float("inf")
        numeric, noise = _mixed_difference(value_of, env, frozenset(), u, v, terms)
        worst = max(worst, _discrepancy(np.array([[analytic]]), np.array([[numeric]]), np.array([[noise]])))
    return worst


def _array_shape(program, name: str, dims, functions) -> tuple[int, int]:
    """The 2-D shape of an input's or a definition's value at these sizes."""
    sym = _variable(program, name)
    dim = Evaluator({}, functions, dims).dim
    return dim(sym.shape[0]), dim(sym.shape[1])


def _variable(program, name: str):
    return program.inputs.get(name) or next(s for s, _ in program.definitions if s.name == name)


def _symmetric(program, name: str) -> bool:
    sym = program.inputs.get(name)
    return sym is not None and sym.symmetric


def _function_prefix(derivation) -> str:
    """What the generated module calls a result: jvp_X for a differential, else grad_X, ..."""
    return "jvp" if derivation.command == "differential" else derivation.command


_COMPARE = {"grad": _compare_gradient, "jacobian": _compare_jacobian, "hessian": _compare_hessian}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to the larger of the two."""
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return float(np.max(np.abs(a - b), initial=0.0)) / scale if scale > 0 else 0.0


def _discrepancy(analytic: np.ndarray, numeric: np.ndarray, noise: np.ndarray) -> float:
    """The worst entry's error beyond the differences' error estimate, relative to that
    entry (or to NEGLIGIBLE of the largest entry, for entries near zero)."""
    if not (np.all(np.isfinite(analytic)) and np.all(np.isfinite(numeric))):
        return float("inf")     # a NaN must fail the check, not vanish in max()
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), float(np.max(np.abs(analytic), initial=0.0)))
    if scale == 0.0:
        return 0.0
    excess = np.maximum(np.abs(analytic - numeric) - noise, 0.0)
    return float(np.max(excess / np.maximum(np.abs(numeric), NEGLIGIBLE * scale), initial=0.0))


def _first_differences(value_of, env, name, fixed, directions, terms=0.0):
    """The derivative of vec(value) along each column of `directions`, Richardson-extrapolated
    from steps h and 2h, and per entry an estimate of its error."""
    x = env[name]
    h = STEP * max(1.0, float(np.max(np.abs(x), initial=0.0)))
    estimates, noises = [], []
    for column in directions.T:
        d = column.reshape(x.shape, order="F")
        f = {k: value_of({**env, name: x + k * h * d}, fixed).reshape(-1, order="F") for k in (-2, -1, 1, 2)}
        near = (f[1] - f[-1]) / (2 * h)
        far = (f[2] - f[-2]) / (4 * h)
        size = np.maximum(np.max(np.abs(np.stack(list(f.values()))), axis=0), terms)
        estimates.append((4 * near - far) / 3)
        noises.append(np.abs(near - far) + ROUNDING * size / h)
    return np.stack(estimates, axis=1), np.stack(noises, axis=1)


def _second_differences(value_of, env, name, fixed, directions, terms=0.0):
    """uᵢᵀ H uⱼ for every pair of columns, from four-point second differences of the
    value (Richardson from h and 2h), and per entry an estimate of its error."""
    x = env[name]
    h = STEP2 * max(1.0, float(np.max(np.abs(x), initial=0.0)))
    k = directions.shape[1]
    cols = [c.reshape(x.shape, order="F") for c in directions.T]
    estimate, noise = np.zeros((k, k)), np.zeros((k, k))

    def f(step):
        return float(value_of({**env, name: x + step}, fixed).item())

    for i in range(k):
        for j in range(i, k):
            s, size = {}, terms
            for t in (1, 2):
                values = [f(t * h * (cols[i] + cols[j])), f(t * h * (cols[i] - cols[j])),
                          f(t * h * (cols[j] - cols[i])), f(-t * h * (cols[i] + cols[j]))]
                s[t] = (values[0] - values[1] - values[2] + values[3]) / (4 * (t * h) ** 2)
                size = max(size, max(abs(v) for v in values))
            estimate[i, j] = estimate[j, i] = (4 * s[1] - s[2]) / 3
            noise[i, j] = noise[j, i] = abs(s[1] - s[2]) + ROUNDING * size / h ** 2
    return estimate, noise


def _directions_for(x, symmetric, rng):
    return _directions(x, symmetric) if x.size <= ENTRYWISE_UP_TO else _random_directions(x, symmetric, rng)


# ------------------------------------------------------------ the generated module

def _generated(derivation):
    """The derivation's generated NumPy module, or None and why not."""
    if not hasattr(derivation, "function"):
        return None, ""
    try:
        return derivation.function(), ""
    except UnsupportedError as exc:
        return None, f"generated code not run: {exc.message}"


def _run_module(module, program, env, functions, derivation, along=None) -> tuple:
    """The module's value, and each variable's derivative, as 2-D arrays (NaN, or None
    for a derivative, where the code raised); a jvp_X also takes its direction from `along`."""
    args = [to_user(env[n], s.shape) for n, s in program.inputs.items()]
    opaque = sorted(program.functions)       # the module's parameters: f, g, ..., then grad_f, grad_g, ...
    args += [functions[f] for f in opaque] + [functions["grad_" + f] for f in opaque]

    def call(fname, shape, *direction):
        try:
            with np.errstate(all="ignore"):
                return from_user(getattr(module, fname)(*args, *direction), shape)
        except Exception:        # noqa: BLE001 -- whatever the generated code raises is a failed check
            return None
    value = call("value", program.output.shape)
    return (np.array([[np.nan]]) if value is None else value,
            {n: call(f"{_function_prefix(derivation)}_{n}", r.shape,
                     *([to_user(along[f"d{n}"], _variable(program, n).shape)] if along else []))
             for n, r in derivation.results.items()})


def _value_error(got, ev: Evaluator, program) -> float:
    """The generated value against the input's own (unsimplified) value, relative to it
    or, where terms cancel, to the largest intermediate the evaluation met."""
    want = ev(program.output)
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return float("inf")
    terms = max((float(np.max(np.abs(v), initial=0.0)) for v in ev.memo.values() if np.all(np.isfinite(v))),
                default=0.0)
    excess = np.maximum(np.abs(got - want) - 1e3 * ROUNDING * terms, 0.0)
    scale = np.maximum(np.abs(want), NEGLIGIBLE * max(terms, 1e-300))
    return float(np.max(excess / scale, initial=0.0))


# ------------------------------------------------------------ points and limits

def _value(program, functions, dims):
    """point -> the program's value.  The differences evaluate it dozens of times, so
    the order of its nodes is worked out once (what run_program would walk each time)."""
    segments, seen = [], set()
    for sym, body in list(program.definitions) + [(None, program.output)]:
        segment = [n for n in E.walk(body) if n not in seen]
        seen.update(segment)
        segments.append((sym, body, segment))

    def value_of(point, fixed=frozenset()):
        env = dict(point)
        ev = Evaluator(env, functions, dims)
        memo = ev.memo
        with np.errstate(all="ignore"):
            for sym, body, segment in segments:
                for n in segment:
                    try:
                        memo[n] = ev._eval(n, [memo[k] for k in n.children()])
                    except np.linalg.LinAlgError:   # singular: not a point of the domain
                        memo[n] = np.full((ev.dim(n.shape[0]), ev.dim(n.shape[1])), np.nan)
                if sym is not None and sym.name not in fixed:
                    env[sym.name] = memo[body]
        return memo[program.output]
    return value_of


def _terms(program, env, functions, dims) -> float:
    """The largest finite magnitude met in evaluating the value at env."""
    ev = run_program(program, env, functions, dims)
    ev(program.output)
    return max((float(np.max(np.abs(v), initial=0.0)) for v in list(ev.memo.values()) + list(ev.env.values())
                if np.all(np.isfinite(v))), default=0.0)


def _valid_point(program, rng, dims, functions):
    value_of = _value(program, functions, dims)
    for _ in range(ATTEMPTS):
        env = sample_inputs(program, rng, dims, functions)
        if np.all(np.isfinite(value_of(env))):
            return env
    return None


def oversized_array(roots, size_of):
    """The first node under `roots` (each visited once) whose array would pass MAX_ENTRIES,
    with its sizes, or None: both --check and --claim refuse such sizes before building."""
    seen: set = set()
    for root in roots:
        for n in E.walk(root):
            if n in seen:
                continue
            seen.add(n)
            sizes = [size_of(d) for d in n.shape]
            if sizes[0] * sizes[1] > MAX_ENTRIES:
                return n, sizes
    return None


def _within_limits(derivation, dims) -> None:
    """Refuse sizes whose arrays would not fit, before any is built."""
    program = derivation.program
    roots = [b for _, b in program.definitions] + [program.output] + \
        list(derivation.results.values()) + [b for _, b in derivation.named]
    found = oversized_array(roots, lambda d: _size(d, dims))
    if found:
        n, sizes = found
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


def _random_directions(x: np.ndarray, symmetric: bool, rng, count: int = DIRECTIONS) -> np.ndarray:
    """Columns vec(D) of `count` random unit directions (symmetric ones for a symmetric X)."""
    columns = []
    for _ in range(count):
        d = rng.standard_normal(x.shape)
        if symmetric:
            d = d + d.T
        columns.append((d / np.sqrt(np.sum(d * d))).reshape(-1, order="F"))
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
