"""Kronecker and vec identities for the simplifier (docs/kron-vec.md).

Layer L2: imports expr only (rules.algebra registers these in its table).  Each
rewrite is one identity of Magnus & Neudecker (2019) ch. 2, with vec stacking
columns and the shapes checked, so that a product the shapes do not settle
(6 = 2·3 = 3·2) is left alone:

    unvec(vec(M)) = M                      vec(unvec(v)) = v, vec(x) = x for a column x
    unvec((A ⊗ B) v) = B unvec(v) Aᵀ       unvec is linear: sums and scalars pass through
    kron_adj_left(A, P ⊗ Q) = (A : P) Q     kron_adj_right(P ⊗ Q, B) = (Q : B) P
    kron_adj_left(A, s11ᵀ) = s sum(A) 11ᵀ  kron_adj_left(A, I) = tr(A) I; both linear in G
    (A ⊗ B)⁻¹ = A⁻¹ ⊗ B⁻¹ (A, B square)    X⁻ᵀ : X = tr(I)
"""
from __future__ import annotations

from .. import expr as E
from ..expr import Fn


def _is_vec(e: E.Expr) -> bool:
    return isinstance(e, E.Apply) and e.fn is Fn.VEC


def vec_rules(e: E.Apply, ctx=None) -> E.Expr | None:
    """vec(unvec(v)) = v; a column is its own vec, a row's is its transpose."""
    a = e.arg
    if isinstance(a, E.Unvec):
        return a.arg
    if a.shape[1] == 1:
        return a
    return E.transpose(a) if a.shape[0] == 1 else None


def unvec_rules(e: E.Unvec, ctx=None) -> E.Expr | None:
    v, shape = e.arg, e.shape
    if _is_vec(v) and v.arg.shape == shape:
        return v.arg
    if isinstance(v, E.Broadcast):
        return E.broadcast(v.value, shape)
    if isinstance(v, E.Zero):
        return E.Zero(shape)
    if isinstance(v, E.Add):
        return E.add(*(E.unvec(t, shape) for t in v.terms))
    if not isinstance(v, E.Mul):
        return None
    scalars = [f for f in v.factors if f.is_scalar]
    chain = [f for f in v.factors if not f.is_scalar]
    if not chain:
        return None
    if len(chain) == 1:
        return E.mul(*scalars, E.unvec(chain[0], shape)) if scalars else None
    kron, rest = chain[0], E.mul(*chain[1:])
    if isinstance(kron, E.Kron) and (kron.right.shape[0], kron.left.shape[0]) == shape:
        inner = E.unvec(rest, (kron.right.shape[1], kron.left.shape[1]))
        return E.mul(*scalars, kron.right, inner, E.transpose(kron.left))
    return None


def kron_adj_rules(e: E.KronAdjLeft | E.KronAdjRight, ctx=None) -> E.Expr | None:
    left = isinstance(e, E.KronAdjLeft)
    factor, g = (e.a, e.g) if left else (e.b, e.g)
    again = (lambda h: E.kron_adj_left(factor, h)) if left else (lambda h: E.kron_adj_right(h, factor))
    if E.is_zero(g):
        return E.Zero(e.shape)
    if isinstance(g, E.Broadcast):                   # every block s11ᵀ: Σ Aᵢⱼ s = s sum(A)
        return E.broadcast(E.mul(g.value, E.apply(Fn.SUM, factor)), e.shape)
    square = factor.shape[0] == factor.shape[1] and e.shape[0] == e.shape[1]
    if isinstance(g, E.Identity) and square:         # I = I ⊗ I: Σ Aᵢᵢ I = tr(A) I
        return E.mul(_trace(factor), E.Identity(e.shape))
    if isinstance(g, E.Kron):                        # blocks Pᵢⱼ Q: Σ Aᵢⱼ Pᵢⱼ Q = (A : P) Q
        near, far = (g.left, g.right) if left else (g.right, g.left)
        if near.shape == factor.shape and far.shape == e.shape:
            return E.mul(E.frobenius(factor, near) if left else E.frobenius(near, factor), far)
        return None
    if isinstance(g, E.Add):
        return E.add(*(again(t) for t in g.terms))
    if isinstance(g, E.Mul):
        scalars = [f for f in g.factors if f.is_scalar]
        chain = [f for f in g.factors if not f.is_scalar]
        if scalars and chain:
            return E.mul(*scalars, again(E.mul(*chain)))
    return None


def _trace(a: E.Expr) -> E.Expr:
    """tr(A); tr(I) is the size, a number where the size is one."""
    n = a.shape[0]
    if isinstance(a, E.Identity):
        return E.const(n) if isinstance(n, int) else E.apply(Fn.TRACE, a)
    return E.apply(Fn.TRACE, a)


def inverse_of_kron(e: E.Apply, ctx=None) -> E.Expr | None:
    a = e.arg
    if isinstance(a, E.Kron) and a.left.shape[0] == a.left.shape[1] and a.right.shape[0] == a.right.shape[1]:
        return E.kron(E.apply(Fn.INV, a.left), E.apply(Fn.INV, a.right))
    return None


def _is_inverse_transpose(a: E.Expr, b: E.Expr) -> bool:
    """a = (b⁻¹)ᵀ = (bᵀ)⁻¹."""
    return (isinstance(a, E.Transpose) and isinstance(a.arg, E.Apply) and a.arg.fn is Fn.INV and a.arg.arg == b) \
        or (isinstance(a, E.Apply) and a.fn is Fn.INV and isinstance(a.arg, E.Transpose) and a.arg.arg == b)


def frobenius_of_inverse(e: E.Frobenius, ctx=None) -> E.Expr | None:
    """X⁻ᵀ : X = tr(X⁻¹ X) = tr(I), the size of X: a number where it is one."""
    if not (_is_inverse_transpose(e.left, e.right) or _is_inverse_transpose(e.right, e.left)):
        return None
    return _trace(E.Identity(e.left.shape))
