"""Numerical verification: derivatives against central finite differences.

Layer L4: imports expr, numeric, derive, rules.  Inputs are drawn from each
symbol's domain, read off how the program uses it: SPD matrices where
logdet/det/inv/symmetric need them, positive entries under log/sqrt/division,
small ones under tan.  A point where the value is not finite is redrawn; if
none is found, the check says so instead of passing or failing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import expr as E
from .expr import Fn
from .numeric import Evaluator, run_program
from .rules.elementwise import ELEMENTWISE

TOLERANCE = 1e-5
STEP = 1e-6
SPD_ARGS = {Fn.LOGDET, Fn.DET, Fn.INV}
ATTEMPTS = 20


def _domain_requirements(program: E.Program) -> dict[str, str]:
    """name -> 'spd' | 'positive' | 'bounded', from where each symbol is used."""
    need: dict[str, str] = {}
    bodies = {s.name: b for s, b in program.definitions}

    def mark(e: E.Expr, domain: str, seen: set):
        if id(e) in seen:
            return
        seen.add(id(e))
        if isinstance(e, E.Symbol):
            if e.name in bodies:
                mark(bodies[e.name], domain, seen)
            elif need.get(e.name) != "spd":
                need[e.name] = domain
        elif isinstance(e, (E.Add, E.Transpose)) or (isinstance(e, E.Apply) and e.fn is Fn.INV):
            for k in e.children():
                mark(k, domain, seen)
        elif isinstance(e, (E.Hadamard, E.Mul)) and domain == "positive":
            for k in e.children():
                mark(k, domain, seen)
        elif isinstance(e, E.Mul) and domain == "spd" and isinstance(e.factors[0], E.Const):
            for k in e.factors[1:]:
                mark(k, domain, seen)

    roots = [b for _, b in program.definitions] + [program.output]
    for root in roots:
        for n in E.walk(root):
            if isinstance(n, E.Apply) and n.fn in SPD_ARGS:
                mark(n.arg, "spd", set())
            elif isinstance(n, E.MatPow):
                pass
            elif isinstance(n, E.Apply) and n.fn in ELEMENTWISE and ELEMENTWISE[n.fn].domain != "real":
                mark(n.arg, ELEMENTWISE[n.fn].domain, set())
            elif isinstance(n, E.Power) and not (isinstance(n.exponent, E.Const) and _is_int(n.exponent.value)
                                                 and n.exponent.value >= 0):
                mark(n.base, "positive", set())
    for sym in program.inputs.values():
        if sym.symmetric and need.get(sym.name) != "positive":
            need[sym.name] = "spd"
    return need


def _is_int(v) -> bool:
    return float(v).is_integer()


def dimension_sizes(program: E.Program, rng: np.random.Generator) -> dict[str, int]:
    """A distinct small size per symbolic dimension, so transposition slips show."""
    names = []
    for sym in program.inputs.values():
        for d in sym.shape:
            for part in str(d).split("*"):
                if not part.isdigit() and part not in names:
                    names.append(part)
    sizes = rng.permutation(np.arange(2, 2 + max(len(names), 1)) + 1)
    return {name: int(sizes[i % len(sizes)]) for i, name in enumerate(names)}


def sample_inputs(program: E.Program, rng: np.random.Generator, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """One random point (2-D arrays) in every input's domain."""
    need = _domain_requirements(program)
    ev = Evaluator({}, dims=dims)
    env = {}
    for name, sym in program.inputs.items():
        r, c = ev.dim(sym.shape[0]), ev.dim(sym.shape[1])
        domain = need.get(name, "real")
        if domain == "spd" and r == c:
            q, _ = np.linalg.qr(rng.standard_normal((r, r)))
            env[name] = (q * rng.uniform(1.0, 3.0, r)) @ q.T
        elif domain == "positive":
            env[name] = rng.uniform(0.5, 2.0, (r, c))
        elif domain == "bounded":
            env[name] = rng.uniform(-0.8, 0.8, (r, c))
        else:
            env[name] = rng.standard_normal((r, c))
        if sym.symmetric and domain != "spd":
            env[name] = (env[name] + env[name].T) / 2
    return env


# A concrete smooth function stands in for every opaque `f: function`.
def _opaque(x):
    return float(np.sum(np.sin(x)) + 0.5 * np.sum(x * x))


def _opaque_grad(x):
    return np.cos(x) + x


def opaque_functions(program: E.Program) -> dict:
    out = {}
    for name in program.functions:
        out[name] = _opaque
        out["grad_" + name] = _opaque_grad
    return out


@dataclass
class CheckReport:
    ok: bool
    worst_error: float
    per_variable: dict[str, float] = field(default_factory=dict)
    message: str = ""
    points: int = 0

    def __str__(self) -> str:
        return self.message


def check_gradient(derivation, seed: int = 0, points: int = 3) -> CheckReport:
    """Compare ∂L/∂X with central differences at `points` random points."""
    program = derivation.program
    rng = np.random.default_rng(seed)
    worst: dict[str, float] = {name: 0.0 for name in derivation.results}
    functions = opaque_functions(program)
    done = 0
    for _ in range(points):
        dims = dimension_sizes(program, rng)
        point = _valid_point(program, rng, dims, functions)
        if point is None:
            break
        done += 1
        env, value_of = point
        ev = run_program(program, env, functions, dims, derivation.adjoints)
        for name, G in derivation.results.items():
            analytic = ev(G)
            numeric = _finite_difference(value_of, env, name, program, rng)
            err = np.max(np.abs(analytic - numeric)) / max(1.0, float(np.max(np.abs(numeric))))
            worst[name] = max(worst[name], float(err))
    if done == 0:
        return CheckReport(False, float("nan"), {}, "check: could not find a point where the expression "
                           f"is finite after {ATTEMPTS} random draws; nothing was verified", 0)
    top = max(worst.values()) if worst else 0.0
    ok = top <= TOLERANCE
    lines = [f"check: {'passed' if ok else 'FAILED'}: worst relative error {top:.2e} "
             f"(tolerance {TOLERANCE:.0e}) at {done} random point{'s' if done > 1 else ''}"]
    lines += [f"  d/d{name}: {err:.2e}" for name, err in worst.items()]
    return CheckReport(ok, top, worst, "\n".join(lines), done)


def _valid_point(program, rng, dims, functions):
    for _ in range(ATTEMPTS):
        env = sample_inputs(program, rng, dims)

        def value_of(point, program=program, functions=functions, dims=dims):
            ev = run_program(program, point, functions, dims)
            return float(ev(program.output).item())
        if np.isfinite(value_of(env)):
            return env, value_of
    return None


def _finite_difference(value_of, env, name, program, rng) -> np.ndarray:
    """Central differences entry by entry (symmetric pairs for symmetric X)."""
    sym = program.inputs.get(name)
    x = env[name]
    grad = np.zeros_like(x)
    symmetric = sym is not None and sym.symmetric
    for idx in np.ndindex(x.shape):
        if symmetric and idx[0] > idx[1]:
            continue
        direction = np.zeros_like(x)
        direction[idx] = 1.0
        if symmetric:
            direction[idx[::-1]] = 1.0
        h = STEP * max(1.0, abs(x[idx]))
        plus, minus = dict(env), dict(env)
        plus[name], minus[name] = x + h * direction, x - h * direction
        slope = (value_of(plus) - value_of(minus)) / (2 * h)
        if symmetric and idx[0] != idx[1]:
            # the directional derivative along E_ij + E_ji is G_ij + G_ji = 2 sym(G)_ij
            grad[idx] = grad[idx[::-1]] = slope / 2
        else:
            grad[idx] = slope
    return grad
