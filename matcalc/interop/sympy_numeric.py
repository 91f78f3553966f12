"""Evaluate a SymPy matrix expression on NumPy arrays: an oracle independent of the bridge.

Layer L2 (beside numeric.py): imports numpy only; SymPy nodes are read by
their class names and `.args`, so this module never imports SymPy itself.
It serves the round-trip tests and bench/sympy_cookbook.py.  It exists
because neither of SymPy's own routes covers the constructors used here:
`lambdify` cannot print HadamardPower or DiagMatrix, and substituting
explicit matrices then `.doit()` fails on DiagonalOf (SymPy 1.14).  What
it cannot evaluate (a Derivative SymPy left unevaluated, an array
expression) raises Unevaluable naming the class.

Values are 2-D arrays, as in numeric.py: a scalar is (1, 1); array expressions
(ArrayTensorProduct, PermuteDims, ...) give n-index arrays.
"""
from __future__ import annotations

from functools import reduce
from typing import Callable, Mapping

import numpy as np


class Unevaluable(ValueError):
    """The expression holds a node with no numerical meaning here; .cls names it."""

    def __init__(self, cls: str):
        super().__init__(f"cannot evaluate SymPy's {cls}")
        self.cls = cls


def _matpow(x: np.ndarray, k) -> np.ndarray:
    k = int(k)
    return np.linalg.matrix_power(np.linalg.inv(x) if k < 0 else x, abs(k))


def _chain(values: list[np.ndarray], nodes) -> np.ndarray:
    """A MatMul: SymPy scalars (not is_Matrix) scale, matrices multiply in order."""
    out = None
    scale = 1.0
    for v, node in zip(values, nodes):
        if not node.is_Matrix:
            scale *= v.item()
        else:
            out = v if out is None else out @ v
    return scale * out if out is not None else np.array([[scale]])


def _diag_matrix(v: np.ndarray) -> np.ndarray:
    return np.diag(v.reshape(-1))       # DiagMatrix takes a row or a column


# SymPy's .diff answers some forms with array expressions (sympy.tensor.array.expressions):
# n-index arrays, evaluated with einsum.  Letters name axes.
def _letters(k: int, start: int = 0) -> str:
    return "".join(chr(ord("a") + start + i) for i in range(k))


def _merge_axes(v: np.ndarray, groups, keep: bool) -> np.ndarray:
    """The axes of each group made one: summed over (ArrayContraction), or kept as
    one diagonal axis moved to the end (ArrayDiagonal, SymPy's order)."""
    axes = list(_letters(v.ndim))
    for g in groups:
        for i in g[1:]:
            axes[i] = axes[g[0]]
    grouped = {i for g in groups for i in g}
    out = "".join(a for i, a in enumerate(axes) if i not in grouped)
    if keep:
        out += "".join(axes[g[0]] for g in groups)
    return np.einsum("".join(axes) + "->" + out, v)


def _elementwise(fn: Callable) -> Callable:
    return lambda ev, e, v: fn(v[0])


# SymPy class name -> evaluate(evaluator, node, values of node.args).  The
# first class in the node's MRO that is listed here decides.
EVALUATE: dict[str, Callable] = {
    "MatrixSymbol": lambda ev, e, v: ev.array(e.name),
    "Symbol": lambda ev, e, v: ev.array(e.name),
    "Rational": lambda ev, e, v: np.array([[float(e)]]),
    "Float": lambda ev, e, v: np.array([[float(e)]]),
    "NumberSymbol": lambda ev, e, v: np.array([[float(e)]]),
    "MatMul": lambda ev, e, v: _chain(v, e.args),
    "Mul": lambda ev, e, v: reduce(np.multiply, v),
    "MatAdd": lambda ev, e, v: reduce(np.add, v),
    "Add": lambda ev, e, v: reduce(np.add, v),
    "Pow": lambda ev, e, v: np.power(v[0], v[1].item()),
    "Transpose": lambda ev, e, v: v[0].T,
    "Inverse": lambda ev, e, v: np.linalg.inv(v[0]),
    "MatPow": lambda ev, e, v: _matpow(v[0], v[1].item()),
    "Trace": lambda ev, e, v: np.array([[np.trace(v[0])]]),
    "Determinant": lambda ev, e, v: np.array([[np.linalg.det(v[0])]]),
    "HadamardProduct": lambda ev, e, v: reduce(np.multiply, v),
    "HadamardPower": lambda ev, e, v: np.power(v[0], v[1].item()),
    "KroneckerProduct": lambda ev, e, v: reduce(np.kron, v),
    "Identity": lambda ev, e, v: np.eye(ev.size(e.shape[0])),
    "ZeroMatrix": lambda ev, e, v: np.zeros(ev.shape(e)),
    "OneMatrix": lambda ev, e, v: np.ones(ev.shape(e)),
    "DiagMatrix": lambda ev, e, v: _diag_matrix(v[0]),
    "DiagonalOf": lambda ev, e, v: np.diag(v[0]).reshape(-1, 1).copy(),
    "ArrayTensorProduct": lambda ev, e, v: reduce(np.multiply.outer, v),
    "ArrayAdd": lambda ev, e, v: reduce(np.add, v),
    "PermuteDims": lambda ev, e, v: np.transpose(v[0], e.permutation.array_form),
    "ArrayContraction": lambda ev, e, v: _merge_axes(v[0], e.contraction_indices, keep=False),
    "ArrayDiagonal": lambda ev, e, v: _merge_axes(v[0], e.diagonal_indices, keep=True),
    "log": _elementwise(np.log),
    "exp": _elementwise(np.exp),
    "sin": _elementwise(np.sin),
    "cos": _elementwise(np.cos),
    "tan": _elementwise(np.tan),
    "tanh": _elementwise(np.tanh),
    "asin": _elementwise(np.arcsin),
    "acos": _elementwise(np.arccos),
    "atan": _elementwise(np.arctan),
    "sinh": _elementwise(np.sinh),
    "cosh": _elementwise(np.cosh),
    "Abs": _elementwise(np.abs),
    "sign": _elementwise(np.sign),
}
# Nodes whose args are not all values: leaves that carry shapes, and array nodes whose
# args after the first are index lists
_LEAVES = {"Identity", "ZeroMatrix", "OneMatrix", "MatrixSymbol"}
_FIRST_ARG_ONLY = {"PermuteDims", "ArrayContraction", "ArrayDiagonal"}


class SympyEvaluator:
    """Evaluates SymPy expressions at one point: env maps names to arrays or
    floats, dims maps dimension names to sizes."""

    def __init__(self, env: Mapping[str, object], dims: Mapping[str, int] | None = None):
        self.env = env
        self.dims = dict(dims or {})
        self.memo: dict = {}

    def array(self, name: str) -> np.ndarray:
        # a dimension may appear as a value: SymPy writes tr(I) as n
        value = np.asarray(self.env[name] if name in self.env else self.dims[name], dtype=float)
        return value.reshape(1, 1) if value.ndim == 0 else value.reshape(-1, 1) if value.ndim == 1 else value

    def size(self, d) -> int:
        """A SymPy dimension: an Integer, a Symbol, or a sum or product of those."""
        if d.is_Integer:
            return int(d)
        if d.is_Symbol:
            return self.dims[d.name]
        sizes = [self.size(a) for a in d.args]
        if d.is_Mul:
            return int(np.prod(sizes))
        if d.is_Add:
            return int(sum(sizes))
        raise Unevaluable(f"dimension {d}")

    def shape(self, e) -> tuple[int, int]:
        return (self.size(e.shape[0]), self.size(e.shape[1]))

    def __call__(self, e) -> np.ndarray:
        out = self.memo.get(e)
        if out is None:
            rule = next((EVALUATE[c.__name__] for c in type(e).__mro__ if c.__name__ in EVALUATE), None)
            if rule is None:
                raise Unevaluable(type(e).__name__)
            name = type(e).__name__
            args = () if name in _LEAVES else e.args[:1] if name in _FIRST_ARG_ONLY else e.args
            values = [self(a) for a in args]
            with np.errstate(all="ignore"):
                out = self.memo[e] = np.asarray(rule(self, e, values), dtype=float)
        return out


def evaluate(e, env: Mapping[str, object], dims: Mapping[str, int] | None = None) -> np.ndarray:
    """e at the point env (2-D result; a scalar is (1, 1))."""
    return SympyEvaluator(env, dims)(e)
