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
    __slots__ = ("id", "nonunit", "soft")

    def __init__(self, id: int, nonunit: bool = True, soft: bool = False):
        self.id = id
        self.nonunit = nonunit
        self.soft = soft        # an undeclared name's size: 1 only when its kind is decided a scalar

    def __repr__(self) -> str:
        return f"?{self.id}"


def dim_factors(d: Dim) -> list[Dim]:
    """The factors of a known dimension as a multiset (sorted): 'm*n' -> ['m', 'n'], 1 -> []."""
    if isinstance(d, int):
        return [] if d == 1 else [d]
    parts = [int(p) if p.isdigit() else p for p in str(d).split("*")]
    return sorted((p for p in parts if p != 1), key=lambda p: (isinstance(p, str), str(p)))


def dim_quotient(whole: Dim, part: Dim) -> Dim | None:
    """whole / part for products of names and numbers, or None where part does not divide."""
    rest = dim_factors(whole)
    number = 1
    for f in list(rest):
        if isinstance(f, int):
            rest.remove(f)
            number *= f
    for f in dim_factors(part):
        if isinstance(f, int):
            if number % f:
                return None
            number //= f
        elif f in rest:
            rest.remove(f)
        else:
            return None
    out: Dim = number
    for f in rest:
        out = dim_product(out, f)
    return out


class ProductConflict(Exception):
    """A product of dimensions (vec, kron) that cannot equal the size it must have.
    `origin` is what the caller passed to Unifier.product (the text to point at)."""

    def __init__(self, origin, reason: str):
        super().__init__(reason)
        self.origin, self.reason = origin, reason


class Unifier:
    """Union-find over dimensions; a class binds to at most one known Dim.

    Products (the sizes of vec(X) and kron(A, B)) are constraints v = slow*fast,
    kept in order (slow index first: kron(a, b) is (a, b), vec(X) is (columns, rows)):
    1*n is n at once, known factors multiply at once, and the rest is settled as
    factors become known (`settle`), a known product dividing out a known factor.
    Two products that must be equal and whose factors are unknown are matched factor
    by factor (`match_products`), the simplest sizes that type: x'*kron(A, B)*x makes
    A and B square."""

    def __init__(self):
        self._parent: dict[int, object] = {}
        self._vars: list[DimVar] = []
        self._count = 0
        self.products: list[tuple[DimVar, object, object, object]] = []   # (v, slow, fast, origin)

    def fresh(self, nonunit: bool = True, soft: bool = False) -> DimVar:
        self._count += 1
        v = DimVar(self._count, nonunit, soft)
        self._parent[v.id] = v
        self._vars.append(v)
        return v

    def snapshot(self) -> tuple:
        """The state to go back to when a tentative choice (a kind) fails."""
        return dict(self._parent), [(v.nonunit, v.soft) for v in self._vars], len(self._vars)

    def restore(self, state: tuple) -> None:
        parent, flags, count = state
        self._parent = dict(parent)
        for v, (nonunit, soft) in zip(self._vars, flags):
            v.nonunit, v.soft = nonunit, soft
        for v in self._vars[count:]:      # made after the snapshot: unconstrained again
            self._parent[v.id] = v

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

    def unify(self, a, b, force: bool = False) -> bool:
        """Merge two dimensions; False if they are different known dims.  A soft size (an
        undeclared name's) becomes 1 only with `force` (syntax/kinds.py decides kinds)."""
        a, b = self.find(a), self.find(b)
        if a is b or (not isinstance(a, DimVar) and not isinstance(b, DimVar) and a == b):
            return True
        if isinstance(a, DimVar) and isinstance(b, DimVar):
            self._parent[a.id] = b
            b.nonunit = b.nonunit or a.nonunit
            b.soft = b.soft or a.soft
            return True
        var, value = (a, b) if isinstance(a, DimVar) else (b, a)
        if not isinstance(var, DimVar) or (value == 1 and (var.nonunit or (var.soft and not force))):
            return False
        self._parent[var.id] = value
        return True

    def product(self, slow, fast, origin=None):
        """The dimension slow*fast: known now where it can be, else a constrained variable."""
        a, b = self.find(slow), self.find(fast)
        if a == 1 and not isinstance(a, DimVar):
            return fast
        if b == 1 and not isinstance(b, DimVar):
            return slow
        v = self.fresh(nonunit=False)          # a product may be 1 (vec of a 1x1)
        if not isinstance(a, DimVar) and not isinstance(b, DimVar):
            self.unify(v, dim_product(a, b))   # known now; the factors' order is kept for matching
        self.products.append((v, slow, fast, origin))
        return v

    def product_roots(self) -> set[int]:
        """Ids of the unbound classes some product constrains (not to be named freely)."""
        return {r.id for r in (self.find(v) for v, _, _, _ in self.products) if isinstance(r, DimVar)}

    def _force(self, a, b, origin, reason) -> bool:
        """unify(a, b) or ProductConflict; True if it bound anything new."""
        ra, rb = self.find(a), self.find(b)
        if ra is rb or (not isinstance(ra, DimVar) and not isinstance(rb, DimVar) and ra == rb):
            return False
        if not self.unify(a, b):
            raise ProductConflict(origin, reason)
        return True

    def settle(self) -> None:
        """Propagate every product constraint until nothing changes; ProductConflict where
        one cannot hold."""
        changed = True
        while changed:
            changed = False
            for v, slow, fast, origin in self.products:
                rv, a, b = self.find(v), self.find(slow), self.find(fast)
                known = [not isinstance(x, DimVar) for x in (rv, a, b)]
                if known == [True, True, True]:
                    if dim_factors(rv) != dim_factors(dim_product(a, b)):
                        raise ProductConflict(origin, f"its size {dim_product(a, b)} cannot equal {rv}")
                    continue
                if known[1] and known[2]:
                    changed |= self._force(v, dim_product(a, b), origin, "its size cannot be 1")
                elif a is rv or b is rv:                # v = v*w: w is 1
                    other = fast if a is rv else slow
                    changed |= self._force(other, 1, origin, "its size would equal one of its factors' sizes, "
                                           "so that the other is 1")
                elif known[0] and (known[1] or known[2]):
                    part, unknown = (a, fast) if known[1] else (b, slow)
                    q = dim_quotient(rv, part)
                    if q is None or (q == 1 and isinstance(self.find(unknown), DimVar) and self.find(unknown).nonunit):
                        raise ProductConflict(origin, f"its size, {part} times another, cannot equal {rv}")
                    changed |= self._force(unknown, q, origin, f"its size, {part} times another, cannot equal {rv}")
                elif (known[1] and a == 1) or (known[2] and b == 1):
                    changed |= self._force(v, fast if known[1] else slow, origin, "its size cannot equal its factor's")

    def match_products(self) -> None:
        """Equal products of unknown factors match factor by factor (in order), where
        that is consistent; a product equal to a known product of two names takes them."""
        by_class: dict[object, list] = {}
        for entry in self.products:
            root = self.find(entry[0])
            by_class.setdefault(root.id if isinstance(root, DimVar) else ("size", root), []).append(entry)
        for entries in by_class.values():
            first = entries[0]
            for other in entries[1:]:
                pairs = [(first[1], other[1]), (first[2], other[2])]
                if all(self._compatible(x, y) for x, y in pairs):
                    for x, y in pairs:
                        self.unify(x, y)
            root = self.find(first[0])
            factors = [] if isinstance(root, DimVar) else dim_factors(root)
            for _, slow, fast, _ in entries:
                a, b = self.find(slow), self.find(fast)
                if len(factors) == 2 and isinstance(a, DimVar) and isinstance(b, DimVar) and a is not b:
                    self.unify(a, factors[0])
                    self.unify(b, factors[1])

    def _compatible(self, x, y) -> bool:
        a, b = self.find(x), self.find(y)
        if a is b:
            return True
        if isinstance(a, DimVar) or isinstance(b, DimVar):
            var, value = (a, b) if isinstance(a, DimVar) else (b, a)
            return not (value == 1 and not isinstance(value, DimVar) and var.nonunit)
        return dim_factors(a) == dim_factors(b)
