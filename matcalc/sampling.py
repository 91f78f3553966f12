"""Random inputs from each symbol's domain, for checks and identity tests.

Layer L3: imports expr, numeric and the elementwise registry.  The domain
is read off how the program uses a symbol: SPD matrices where
logdet/det/inv or a symmetric declaration need them, positive entries under
log/sqrt/division, small ones under tan.
"""
from __future__ import annotations

import numpy as np

from . import expr as E
from .expr import Fn
from .numeric import Evaluator
from .rules.elementwise import ELEMENTWISE

SPD_ARGS = {Fn.LOGDET, Fn.DET, Fn.INV, Fn.LOGM, Fn.SQRTM, Fn.CHOL}


def _domain_requirements(program: E.Program, tall: list | None = None) -> dict[str, str]:
    """name -> 'spd' | 'positive' | 'bounded', from where each symbol is used.
    A Gram product Yᵀ Y that must be SPD needs Y at least as tall as wide:
    those (rows, columns) dimension pairs are appended to `tall`."""
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
        elif isinstance(e, E.MatPow) and domain == "spd":      # a power of an SPD matrix is SPD
            mark(e.base, domain, seen)
        elif isinstance(e, E.Apply) and e.fn is Fn.DIAG and domain == "spd":   # diag(x) is SPD for x > 0
            mark(e.arg, "positive", seen)
        elif isinstance(e, (E.Hadamard, E.Mul)) and domain == "positive":
            for k in e.children():
                mark(k, domain, seen)
        elif isinstance(e, E.Mul) and domain == "spd" and isinstance(e.factors[0], E.Const):
            for k in e.factors[1:]:
                mark(k, domain, seen)
        elif isinstance(e, E.Mul) and domain == "spd" and sum(not k.is_scalar for k in e.factors) == 1:
            for k in e.factors:                 # alpha*S: alpha > 0, S SPD
                mark(k, "spd" if not k.is_scalar else "positive", seen)
        elif isinstance(e, E.Mul) and domain == "spd" and len(e.factors) == 2 and tall is not None:
            left, right = e.factors
            if isinstance(left, E.Transpose) and left.arg == right:        # Yᵀ Y
                tall.append((right.shape[0], right.shape[1]))
            elif isinstance(right, E.Transpose) and right.arg == left:     # Y Yᵀ
                tall.append((left.shape[1], left.shape[0]))

    roots = [b for _, b in program.definitions] + [program.output]
    for root in roots:
        for n in E.walk(root):
            if isinstance(n, E.Apply) and n.fn in SPD_ARGS:
                mark(n.arg, "spd", set())
            elif isinstance(n, (E.FrechetAdj, E.FrechetJac)) and n.fn in SPD_ARGS:   # logm_adj, sqrtm_adj
                mark(n.x, "spd", set())
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
    shapes = [sym.shape for sym in program.inputs.values()]
    for root in [b for _, b in program.definitions] + [program.output]:
        shapes += [n.shape for n in E.walk(root)]     # I and ones may carry sizes of their own
    for shape in shapes:
        for d in shape:
            for part in str(d).split("*"):
                if not part.isdigit() and part not in names:
                    names.append(part)
    sizes = rng.permutation(np.arange(2, 2 + max(len(names), 1)) + 1)
    out = {name: int(sizes[i % len(sizes)]) for i, name in enumerate(names)}
    tall: list = []
    _domain_requirements(program, tall)
    for rows, cols in tall:          # a Gram product that must be SPD: swap sizes to make it so
        if str(rows) in out and str(cols) in out and out[str(rows)] < out[str(cols)]:
            out[str(rows)], out[str(cols)] = out[str(cols)], out[str(rows)]
    return out


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
