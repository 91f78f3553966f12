"""Symmetry proved from structure: is e = eᵀ for every value of its symbols?

Layer L2: imports expr and shapes.  A symbolic property is never inferred
from numbers at sampled points (a point drawn SPD makes inv(A) look
symmetric): `is_symmetric` is a proof over the tree and the declarations,
true only where symmetry holds for every value, and False where it cannot
tell (the caller then symmetrises, which is always right).

The relation underneath is `a = bᵀ`, decided node type by node type (a
table, below): a symmetric(n) symbol, I, 0, a scalar, diag(v) and K(n, n) are
their own transposes; (A B C)ᵀ = Cᵀ Bᵀ Aᵀ pairs a product's factors from both
ends (BᵀSB, AAᵀ); a sum or a Hadamard product pairs its terms as multisets
(A + Aᵀ); f(A)ᵀ = f(Aᵀ) for elementwise f, inv, powers; (A⊗B)ᵀ = Aᵀ⊗Bᵀ;
scalar factors commute.  `defs` gives the bodies of named intermediates.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, Mapping

from .. import expr as E
from ..expr import Fn
from ..shapes import transposed as transposed_shape

# A sum or Hadamard product with more operands than this is matched only when
# each operand is its own transpose: the pairing is quadratic in the operands.
MAX_PAIRED = 200

# Scalar-valued functions whose value does not change when the argument is transposed.
TRANSPOSE_INVARIANT = {Fn.TRACE, Fn.DET, Fn.LOGDET, Fn.SUM, Fn.NORM1, Fn.NORM2}
# Matrix functions that commute with transposition, f(Xᵀ) = f(X)ᵀ (so f(S) is symmetric):
# the inverse, and the primary matrix functions and others where matcalc has them.
TRANSPOSE_COMMUTING = {Fn.INV} | {getattr(Fn, name) for name in ("EXPM", "LOGM", "SQRTM", "PINV", "ADJ")
                                  if hasattr(Fn, name)}


class _Prover:
    def __init__(self, defs: Mapping[str, E.Expr]):
        self.defs = defs
        self.memo: dict[tuple[E.Expr, E.Expr], bool] = {}

    def symmetric(self, e: E.Expr) -> bool:
        return e.shape[0] == e.shape[1] and self.transpose_of(e, e)

    def equal(self, a: E.Expr, b: E.Expr) -> bool:
        """a = b, structurally or through one transposition: (Xᵀ = b iff X = bᵀ)."""
        if a == b:
            return True
        if isinstance(a, E.Transpose):
            return self.transpose_of(a.arg, b)
        if isinstance(b, E.Transpose):
            return self.transpose_of(b.arg, a)
        return False

    def transpose_of(self, a: E.Expr, b: E.Expr) -> bool:
        """a = bᵀ, proved."""
        if a.shape != transposed_shape(b.shape):
            return False
        key = (a, b)
        hit = self.memo.get(key)
        if hit is None:
            self.memo[key] = False          # a cycle proves nothing
            hit = self.memo[key] = self._transpose_of(a, b)
        return hit

    def _transpose_of(self, a: E.Expr, b: E.Expr) -> bool:
        if isinstance(a, E.Transpose):           # Xᵀ = bᵀ iff X = b
            return self.equal(a.arg, b)
        if isinstance(b, E.Transpose):
            return self.equal(a, b.arg)
        if a.is_scalar and a == b:               # a scalar is its own transpose
            return True
        for side, other in ((a, b), (b, a)):     # a named intermediate: its definition
            if isinstance(side, E.Symbol) and side.kind == "defined" and side.name in self.defs:
                if side == other:
                    return self.symmetric(self.defs[side.name])
                return self.transpose_of(self.defs[side.name], other) if side is a \
                    else self.transpose_of(other, self.defs[side.name])
        rule = TRANSPOSE_RULES.get(type(a))
        return rule is not None and type(b) is type(a) and rule(self, a, b)

    def paired(self, xs, ys, match: Callable[[E.Expr, E.Expr], bool]) -> bool:
        """The multisets xs and ys correspond one to one under `match`."""
        if len(xs) != len(ys):
            return False
        if len(xs) > MAX_PAIRED:
            return all(x == y for x, y in zip(xs, ys)) and all(self.symmetric(x) for x in xs)
        free = list(ys)
        for x in xs:
            j = next((j for j, y in enumerate(free) if match(x, y)), None)
            if j is None:
                return False
            free.pop(j)
        return True


def _symbol(p, a, b):
    return a == b and (a.symmetric or a.is_scalar)


def _same(p, a, b):                      # I, 0 (of transposed shapes), a broadcast scalar
    return a.is_scalar or isinstance(a, (E.Identity, E.Zero)) or (
        isinstance(a, E.Broadcast) and p.equal(a.value, b.value))


def _commutation(p, a, b):               # K_mnᵀ = K_nm
    return a.m == b.n and a.n == b.m


def _differential(p, a, b):
    return a == b and isinstance(a.target, E.Symbol) and (a.target.symmetric or a.is_scalar)


def _mul(p, a, b):
    """(s A₁ … A_k)ᵀ = s A_kᵀ … A₁ᵀ: scalars as a multiset, the chain from both ends."""
    sa = [f for f in a.factors if f.is_scalar]
    sb = [f for f in b.factors if f.is_scalar]
    ca = [f for f in a.factors if not f.is_scalar]
    cb = [f for f in b.factors if not f.is_scalar]
    if len(ca) != len(cb) or not p.paired(sa, sb, p.equal):
        return False
    return all(p.transpose_of(x, y) for x, y in zip(ca, reversed(cb)))


def _terms(p, a, b):                     # (A + B)ᵀ = Aᵀ + Bᵀ, (A⊙B)ᵀ = Aᵀ⊙Bᵀ, in any order
    return p.paired(a.children(), b.children(), p.transpose_of)


def _apply(p, a, b):
    if a.fn is not b.fn:
        return False
    if a.fn.elementwise or a.fn in TRANSPOSE_COMMUTING:   # f(X)ᵀ = f(Xᵀ), (X⁻¹)ᵀ = (Xᵀ)⁻¹
        return p.transpose_of(a.arg, b.arg)
    if a.fn is Fn.DIAG:                      # diag(v)ᵀ = diag(v)
        return p.equal(a.arg, b.arg)
    if a.fn in TRANSPOSE_INVARIANT:          # tr(Xᵀ) = tr(X), det, sum, norms
        return p.equal(a.arg, b.arg) or p.transpose_of(a.arg, b.arg)
    return a == b and a.is_scalar


def _power(p, a, b):                     # (X.^q)ᵀ = (Xᵀ).^q
    return a.exponent == b.exponent and p.transpose_of(a.base, b.base)


def _matpow(p, a, b):                    # (X^k)ᵀ = (Xᵀ)^k
    return a.k == b.k and p.transpose_of(a.base, b.base)


def _kron(p, a, b):                      # (A⊗B)ᵀ = Aᵀ⊗Bᵀ
    return p.transpose_of(a.left, b.left) and p.transpose_of(a.right, b.right)


def _frobenius(p, a, b):                 # a scalar: A:B = B:A = Aᵀ:Bᵀ
    return (p.equal(a.left, b.left) and p.equal(a.right, b.right)) or (
        p.equal(a.left, b.right) and p.equal(a.right, b.left))


# Node type -> when is a = bᵀ (both of that type).  grad_f(X) has no entry:
# the gradient of an arbitrary f is not symmetric, even at a symmetric X.
TRANSPOSE_RULES: dict[type, Callable[[_Prover, E.Expr, E.Expr], bool]] = {
    E.Symbol: _symbol,
    E.Const: lambda p, a, b: a == b,
    E.Identity: _same,
    E.Zero: _same,
    E.Broadcast: _same,
    E.Commutation: _commutation,
    E.Differential: _differential,
    E.Mul: _mul,
    E.Add: _terms,
    E.Hadamard: _terms,
    E.Apply: _apply,
    E.Power: _power,
    E.MatPow: _matpow,
    E.Kron: _kron,
    E.Frobenius: _frobenius,
}


@lru_cache(maxsize=1 << 16)
def _symmetric_alone(e: E.Expr) -> bool:
    return _Prover({}).symmetric(e)


def is_symmetric(e: E.Expr, defs: Mapping[str, E.Expr] | None = None) -> bool:
    """e = eᵀ for every value of its symbols (symmetric(n) ones symmetric), proved
    from the tree; `defs` maps names of intermediates to their definitions."""
    if e.shape[0] != e.shape[1]:
        return False
    if not defs:
        return _symmetric_alone(e)
    return _Prover(defs).symmetric(e)


def is_transpose_of(a: E.Expr, b: E.Expr, defs: Mapping[str, E.Expr] | None = None) -> bool:
    """a = bᵀ for every value of the symbols, proved from the trees."""
    return _Prover(defs or {}).transpose_of(a, b)
