"""Dimensions and shapes, and the unification used to infer them.

Layer L0.  Everything is a matrix: a scalar is (1, 1), a (column) vector
(n, 1), a row vector (1, n).  A dimension is a positive int or a symbolic
name ('n'); products of dimensions (from vec and kron) are names like 'm*n'.
"""
from __future__ import annotations

Dim = int | str
Shape = tuple[Dim, Dim]

SCALAR: Shape = (1, 1)


def is_scalar(shape: Shape) -> bool:
    return shape == SCALAR


def is_column(shape: Shape) -> bool:
    return shape[1] == 1 and shape[0] != 1


def is_row(shape: Shape) -> bool:
    return shape[0] == 1 and shape[1] != 1


def is_vector(shape: Shape) -> bool:
    return is_column(shape) or is_row(shape)


def is_square(shape: Shape) -> bool:
    return shape[0] == shape[1]


def transposed(shape: Shape) -> Shape:
    return (shape[1], shape[0])


def dim_product(a: Dim, b: Dim) -> Dim:
    """The dimension a*b, kept symbolic where either side is."""
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    factors = str(a).split("*") + str(b).split("*")
    number = 1
    names = []
    for f in factors:
        if f.isdigit():
            number *= int(f)
        else:
            names.append(f)
    return "*".join(([str(number)] if number != 1 else []) + sorted(names))


def show_shape(shape: Shape) -> str:
    if is_scalar(shape):
        return "scalar"
    if is_column(shape):
        return f"vector({shape[0]})"
    if is_row(shape):
        return f"row vector({shape[1]})"
    return f"matrix({shape[0]}, {shape[1]})"


class DimVar:
    """An unknown dimension during inference.  A named matrix or vector has
    non-unit dimensions: x'*A*x never quietly makes x a 1-vector."""
    __slots__ = ("id", "nonunit")

    def __init__(self, id: int, nonunit: bool = True):
        self.id = id
        self.nonunit = nonunit

    def __repr__(self) -> str:
        return f"?{self.id}"


class Unifier:
    """Union-find over dimensions; a class binds to at most one known Dim."""

    def __init__(self):
        self._parent: dict[int, object] = {}
        self._count = 0

    def fresh(self, nonunit: bool = True) -> DimVar:
        self._count += 1
        v = DimVar(self._count, nonunit)
        self._parent[v.id] = v
        return v

    def find(self, d):
        while isinstance(d, DimVar):
            p = self._parent[d.id]
            if p is d:
                return d
            nxt = self._parent[p.id] if isinstance(p, DimVar) else p
            if isinstance(p, DimVar):
                self._parent[d.id] = nxt  # path halving
            d = p
        return d

    def unify(self, a, b) -> bool:
        """Merge two dimensions; False if they are different known dims."""
        a, b = self.find(a), self.find(b)
        if a is b or (not isinstance(a, DimVar) and not isinstance(b, DimVar) and a == b):
            return True
        if isinstance(a, DimVar) and isinstance(b, DimVar):
            self._parent[a.id] = b
            b.nonunit = b.nonunit or a.nonunit
            return True
        var, value = (a, b) if isinstance(a, DimVar) else (b, a)
        if not isinstance(var, DimVar) or (value == 1 and var.nonunit):
            return False
        self._parent[var.id] = value
        return True
