"""An optimizer's view of a derivation: fun, jac and hessp over the flattened variables.

Layer L5: imports api, jacobian and errors; NumPy at
import (this module is loaded by d.objective(), never by `import matcalc`), SciPy
only in Objective.minimize.  The variables (the derivation's wrt) are
concatenated, each raveled in C order, into one vector theta; the other inputs
are the data, fixed when the objective is made.  fun and jac share one
value_and_grad per theta; hessp(theta, p) is the generated hvp: the
differential of the gradient, about the cost of a gradient, no Hessian formed.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import api
from . import expr as E
from .errors import UsageError
from .jacobian import hessian_vector_product
from .shapes import is_column, is_row, is_scalar


class Objective:
    """fun(theta), jac(theta), hessp(theta, p) for scipy.optimize.minimize, and
    unflatten(theta) -> {variable: array}; x0 is the flattened starting point (the
    variables' values given as data, zeros for the others)."""

    def __init__(self, d, data: dict):
        program = d.program
        # a name the generated code renames (lambda_ for lambda) is accepted in either spelling
        data = {k[:-1] if k not in program.inputs and k.endswith("_") and k[:-1] in program.inputs else k: v
                for k, v in data.items()}
        if not program.output.is_scalar:
            raise UsageError("an objective is a scalar expression")
        missing = [n for n in program.inputs if n not in d.wrt and n not in data]
        if missing:
            raise UsageError(f"objective(): give the data {', '.join(missing)} (every input that is not a "
                             f"variable: {', '.join(d.wrt)} are the variables)")
        unknown = [n for n in data if n not in program.inputs]
        if unknown:
            raise UsageError(f"objective(): {', '.join(unknown)} is not an input of the expression")
        if any(n not in program.inputs for n in d.wrt):
            raise UsageError("objective(): the variables must be inputs, not named intermediates")
        self.variables = list(d.wrt)
        self._order = list(program.inputs)
        self.shapes = _shapes(program, d.wrt, data)
        self._sizes = [int(np.prod(s)) for s in self.shapes.values()]
        self.data = {n: np.asarray(v, dtype=float) if not np.isscalar(v) else float(v) for n, v in data.items()}
        self.x0 = np.concatenate([np.ravel(self.data[n]) if n in self.data else np.zeros(size)
                                  for n, size in zip(self.variables, self._sizes)]) if self._sizes else np.zeros(0)
        first, second, self._state_names = _modules(d)
        namespaces: list[dict] = [{}, {}]
        for source, namespace in zip((first, second), namespaces):
            exec(compile(source, "<matcalc objective>", "exec"), namespace)
        self._value_and_grad, self._hvp = namespaces[0]["value_and_grad"], namespaces[1]["hvp"]
        self._cached: tuple[bytes, float, np.ndarray, list] | None = None
        self.evaluations = {"value_and_grad": 0, "hvp": 0}

    def unflatten(self, theta) -> dict[str, np.ndarray | float]:
        """{variable: its value}, shaped as the generated code takes it (a scalar as a float)."""
        theta = np.asarray(theta, dtype=float)
        out, start = {}, 0
        for (name, shape), size in zip(self.shapes.items(), self._sizes):
            part = theta[start:start + size]
            out[name] = float(part[0]) if shape == () else part.reshape(shape)
            start += size
        return out

    def flatten(self, values: dict) -> np.ndarray:
        """theta for {variable: value} (the inverse of unflatten)."""
        return np.concatenate([np.ravel(np.asarray(values[n], dtype=float)) for n in self.variables])

    def _arguments(self, theta) -> list:
        inputs = {**self.data, **self.unflatten(theta)}
        return [inputs[n] for n in self._order]

    def _evaluate(self, theta) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if self._cached is None or self._cached[0] != key:
            value, *out = self._value_and_grad(*self._arguments(theta))
            self.evaluations["value_and_grad"] += 1
            grads, state = out[:len(self.variables)], out[len(self.variables):]
            self._cached = (key, float(value), self.flatten(dict(zip(self.variables, grads))), state)
        return self._cached[1], self._cached[2]

    def fun(self, theta) -> float:
        return self._evaluate(theta)[0]

    def jac(self, theta) -> np.ndarray:
        return self._evaluate(theta)[1]

    def value_and_jac(self, theta) -> tuple[float, np.ndarray]:
        """(fun, jac) at once: minimize(o.value_and_jac, x0, jac=True, ...)."""
        return self._evaluate(theta)

    def hessp(self, theta, p) -> np.ndarray:
        """The Hessian at theta times p (the generated hvp)."""
        directions = self.unflatten(p)
        self._evaluate(theta)                  # the point's state, computed with its gradient
        self.evaluations["hvp"] += 1
        parts = self._hvp(*self._arguments(theta), *self._cached[3], *[directions[n] for n in self.variables])
        return self.flatten(dict(zip(self.variables, parts)))

    def minimize(self, method: str = "Newton-CG", x0=None, **options):
        """scipy.optimize.minimize on this objective (SciPy: pip install 'matcalc-symbolic[optimize]');
        hessp is passed to the methods that take it."""
        try:
            from scipy.optimize import minimize
        except ImportError:
            raise UsageError("Objective.minimize needs SciPy: pip install 'matcalc-symbolic[optimize]'") from None
        uses_hessp = method.lower() in {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
        return minimize(self.fun, self.x0 if x0 is None else x0, jac=self.jac,
                        hessp=self.hessp if uses_hessp else None, method=method, **options)


def _shapes(program, variables, data) -> dict[str, tuple]:
    """Each variable's NumPy shape: its dimensions from the data's arrays (or its own value)."""
    sizes: dict[str, int] = {}
    for name, value in data.items():
        shape = program.inputs[name].shape
        array = np.asarray(value)
        dims = [] if is_scalar(shape) else [shape[0]] if is_column(shape) else [shape[1]] if is_row(shape) \
            else list(shape)
        if array.ndim != len(dims):
            raise UsageError(f"objective(): {name} is a {len(dims)}-D input, got a {array.ndim}-D array")
        for dim, n in zip(dims, array.shape):
            if isinstance(dim, int) and dim != n:
                raise UsageError(f"objective(): {name} has {n} where its declaration says {dim}")
            sizes.setdefault(str(dim), n)
    out = {}
    for name in variables:
        shape = program.inputs[name].shape
        dims = [] if is_scalar(shape) else [shape[0]] if is_column(shape) else [shape[1]] if is_row(shape) \
            else list(shape)
        try:
            out[name] = tuple(d if isinstance(d, int) else _size(str(d), sizes) for d in dims)
        except KeyError as exc:
            raise UsageError(f"objective(): the size {exc.args[0]} of {name} is fixed by no data: "
                             f"give {name}'s starting value") from None
    return out


def _size(dim: str, sizes: dict[str, int]) -> int:
    product = 1
    for part in dim.split("*"):
        product *= int(part) if part.isdigit() else sizes[part]
    return product


def _modules(d) -> tuple[str, str, list[str]]:
    """Two NumPy modules and the names of the point's state: the first's value_and_grad
    returns the value, the gradients and the state (every part of the hvp that does not
    depend on the direction), the second's hvp takes the inputs, the state and the
    directions.  So a Newton step computes its point's work once, with the gradient,
    and each Hessian-vector product of its conjugate gradients only what is linear in p
    (a linearised hvp: for logistic regression two passes over X instead of three)."""
    g = api.grad(d.program, list(d.wrt))
    taken = {s.name for s, _ in g.named} | set(d.program.inputs) | {s.name for s, _ in d.program.definitions}
    hvp, needed = hessian_vector_product(d.program, list(d.wrt), taken)
    varying = {s.name for s, b in needed if _varies(b, set())}        # the tangents
    point_defs = [(s, b) for s, b in needed if s.name not in varying]
    tangent_defs = [(s, b) for s, b in needed if s.name in varying]
    state: dict[E.Expr, E.Symbol] = {}
    taken |= {s.name for s, _ in needed}

    def hoisted(e: E.Expr) -> E.Expr:
        """e with its maximal direction-free parts replaced by state symbols."""
        if not _varies(e, varying):
            if isinstance(e, (E.Const, E.Identity, E.Zero, E.Commutation)) or \
                    (isinstance(e, E.Symbol) and e.name in d.program.inputs):
                return e
            if e not in state:
                state[e] = E.Symbol(_fresh("s", taken), e.shape, _kind(e.shape))
            return state[e]
        kids = e.children()
        return e.with_children(tuple(hoisted(k) for k in kids)) if kids else e

    tangent_defs = [(s, hoisted(b)) for s, b in tangent_defs]
    hvp = {w: hoisted(e) for w, e in hvp.items()}
    first = replace(g, results={**g.results, **{s.name: e for e, s in state.items()}},
                    adjoints=list(g.adjoints) + [(s, b) for s, b in point_defs
                                                 if s.name not in {a.name for a, _ in g.adjoints}])
    inputs = {**d.program.inputs, **{s.name: s for s in state.values()}}
    program = replace(d.program, inputs=inputs, definitions=tuple(tangent_defs), output=E.ONE)
    second = replace(g, program=program, results={}, adjoints=[], shared=[], hvp=hvp, hvp_named=[])
    return first.numpy(), second.numpy(), [s.name for s in state.values()]


def _varies(e: E.Expr, tangents: set[str]) -> bool:
    return any(isinstance(n, E.Differential) or (isinstance(n, E.Symbol) and n.name in tangents)
               for n in E.walk(e))


def _kind(shape) -> str:
    return "scalar" if is_scalar(shape) else "vector" if is_column(shape) else "matrix"


def _fresh(stem: str, taken: set[str]) -> str:
    i = 1
    while f"{stem}_{i}" in taken:
        i += 1
    taken.add(f"{stem}_{i}")
    return f"{stem}_{i}"


__all__ = ["Objective"]
