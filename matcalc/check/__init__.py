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
so a derivative of size 1e-6 is judged against 1e-6, not against 1; a result
that is zero up to the rounding of the value's terms is judged zero.
A point where the value is not finite is redrawn; if none is found, the check
says so instead of passing or failing.  An input or result with kinks (abs,
sign, step, relu, norm1, max, min) gets more points: see points.py.

The family modules: differences.py (differences of the value; gradient,
Jacobian and Hessian comparisons), linear.py (differentials, Hessian blocks,
Hessian-vector products), points.py (points, kinks, limits).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..errors import UnsupportedError
from ..numeric import Evaluator, from_user, run_program, to_user
from ..sampling import dimension_sizes, opaque_functions, sample_inputs
from .differences import (COMPARE, DIRECTIONS, ENTRYWISE_UP_TO, HESSIAN_DIRECTIONS, HESSIAN_ENTRYWISE_UP_TO,
                          NEGLIGIBLE, ROUNDING, STEP, STEP2, TOLERANCE, random_directions)
from .linear import along, block, hvp_error
from .points import (ATTEMPTS, KINK_LINES, MAX_ENTRIES, Value, across_kinks, extra_plan, has_kinks,
                     oversized_array, terms_at, valid_point, within_limits)

__all__ = ["check_derivation", "check_gradient", "CheckReport", "dimension_sizes", "sample_inputs",
           "opaque_functions", "oversized_array", "TOLERANCE", "STEP", "STEP2", "ROUNDING", "NEGLIGIBLE",
           "ATTEMPTS", "ENTRYWISE_UP_TO", "DIRECTIONS", "HESSIAN_ENTRYWISE_UP_TO", "HESSIAN_DIRECTIONS",
           "MAX_ENTRIES"]


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
    points (more where the input or a result has kinks: see points.py): a gradient and
    a Jacobian with first differences, a Hessian with second differences.  With
    run_code (and a derivation that generates code) the generated NumPy module's
    value and derivatives are compared too."""
    program = derivation.program
    rng = np.random.default_rng(seed)
    functions = opaque_functions(program, salt=seed)
    module, code_note = _generated(derivation) if run_code else (None, "")
    tally = _Tally(derivation, program, functions, module, rng)
    first = []
    for i in range(points):
        dims = dimension_sizes(program, rng, point=i)     # distinct sizes, then 1 and 2, then any
        within_limits(derivation, dims)
        env = valid_point(program, rng, dims, functions)
        if env is None:
            continue          # these sizes may be the obstacle (a Gram product of a wide factor)
        first.append((dims, env))
        tally.compare_at(dims, env)
    kinks = {"scaled": 0, "beside kinks": 0}
    roots = [b for _, b in program.definitions] + [program.output] + list(derivation.results.values())
    if has_kinks(roots):
        for size_point, scale in extra_plan(points):
            dims = dimension_sizes(program, rng, point=size_point)
            within_limits(derivation, dims)
            env = valid_point(program, rng, dims, functions, scale)
            if env is not None:
                kinks["scaled"] += 1
                tally.compare_at(dims, env)
        for dims, env in first[:KINK_LINES]:
            for near in across_kinks(program, functions, dims, env, rng):
                kinks["beside kinks"] += 1
                tally.compare_at(dims, near)
    return tally.report(code_note, kinks)


check_gradient = check_derivation


class _Tally:
    """The comparisons at each point, and the worst errors so far."""

    def __init__(self, derivation, program, functions, module, rng):
        self.derivation, self.program, self.functions, self.module, self.rng = \
            derivation, program, functions, module, rng
        self.worst: dict[str, float] = {name: 0.0 for name in derivation.results}
        self.generated: dict[str, float] = {}
        self.done = 0

    def compare_at(self, dims, env) -> None:
        derivation, program, functions, module, rng = \
            self.derivation, self.program, self.functions, self.module, self.rng
        generated = self.generated
        self.done += 1
        # a differential is checked along one random direction dX per variable
        shape_of = {name: _array_shape(program, name, dims, functions) for name in derivation.results} \
            if derivation.command == "differential" else {}
        toward = {name: random_directions(np.zeros(shape), _symmetric(program, name), rng, 1)
                  for name, shape in shape_of.items()}
        direction = {f"d{name}": column.reshape(shape_of[name], order="F") for name, column in toward.items()}
        ev = run_program(program, {**env, **direction}, functions, dims, derivation.adjoints)
        value_of = Value(program, functions, dims)
        terms = terms_at(program, env, functions, dims)
        code = _run_module(module, program, env, functions, derivation, direction) if module is not None else None
        if code is not None:
            code_value, code = code
            generated["value"] = max(generated.get("value", 0.0), _value_error(code_value, ev, program))
        if code is not None and derivation.hvp:
            generated["hvp"] = max(generated.get("hvp", 0.0),
                                   hvp_error(module, derivation.wrt, program, env, functions, value_of, terms, rng))
        for name, result in derivation.results.items():
            pair = derivation.blocks.get(name)      # a Hessian block ∂²L/∂X∂Y: both perturbed
            fixed = frozenset(n for n in (pair or (name,)) if n not in program.inputs)
            point = {**env, **{n: ev.env[n] for n in (pair or (name,))}}   # an intermediate: its definition held
            symmetric = _symmetric(program, name)
            compare = along(toward[name]) if toward else block(*pair, *map(partial(_symmetric, program), pair)) \
                if pair else COMPARE[derivation.command]
            candidates = [ev(result)] + ([code.get(name)] if code is not None else [])
            errors = compare(candidates, point, name, fixed, symmetric, value_of, terms, rng)
            self.worst[name] = max(self.worst[name], errors[0])
            if code is not None:
                label = f"{_function_prefix(derivation)}_{name}"
                generated[label] = max(generated.get(label, 0.0), errors[1])

    def report(self, code_note: str, kinks: dict) -> CheckReport:
        worst, generated, done = self.worst, self.generated, self.done
        if done == 0:
            return CheckReport(False, float("nan"), {}, "check: could not find a point where the expression "
                               f"is finite after {ATTEMPTS} random draws; nothing was verified", 0)
        top = max(list(worst.values()) + list(generated.values())) if worst else 0.0
        ok = top <= TOLERANCE
        extra = [f"{k} {what}" for what, k in kinks.items() if k]
        where = f"{done} random point{'s' if done > 1 else ''}" + (
            f" ({', '.join(extra)}: the input or a result has kinks)" if extra else "")
        lines = [f"check: {'passed' if ok else 'FAILED'}: worst relative error {top:.2e} "
                 f"(tolerance {TOLERANCE:.0e}) at {where}"]
        lines += [f"  d/d{name}: {err:.2e}" + _note(err) for name, err in worst.items()]
        lines += [f"  generated {label}: {err:.2e}" + _note(err) for label, err in generated.items()]
        if code_note:
            lines.append(f"  ({code_note})")
        return CheckReport(ok, top, worst, "\n".join(lines), done, generated)


def _note(err: float) -> str:
    return "  (not finite: NaN or infinity at a sampled point)" if err == float("inf") else ""


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


