"""Kronecker and vec identities for the simplifier (docs/kron-vec.md).

Layer L2: imports expr only (rules.algebra registers these in its table).  Each
rewrite is one identity of Magnus & Neudecker (2019) ch. 2, with vec stacking
columns and the shapes checked, so that a product the shapes do not settle
(6 = 2·3 = 3·2) is left alone:

    (A ⊗ B) vec(M) = vec(B M Aᵀ)          vec(M)ᵀ (A ⊗ B) = vec(Bᵀ M A)ᵀ
    unvec(vec(M)) = M                      vec(unvec(v)) = v
    unvec((A ⊗ B) v) = B unvec(v) Aᵀ       unvec is linear: sums and scalars pass through
"""
from __future__ import annotations

from .. import expr as E
from ..expr import Fn


def _is_vec(e: E.Expr) -> bool:
    return isinstance(e, E.Apply) and e.fn is Fn.VEC


def _vec_trick(kron: E.Kron, m: E.Expr) -> E.Expr | None:
    """(A ⊗ B) vec(M) = vec(B M Aᵀ) where M is (columns of B) × (columns of A)."""
    a, b = kron.left, kron.right
    if m.shape != (b.shape[1], a.shape[1]):
        return None
    return E.apply(Fn.VEC, E.mul(b, m, E.transpose(a)))


def kron_times_vec(e: E.Mul, ctx=None) -> E.Expr | None:
    """A Kronecker product times a vec, or a transposed vec times one: never the mn × pq matrix."""
    fs = e.factors
    for i in range(len(fs) - 1):
        left, right = fs[i], fs[i + 1]
        if isinstance(left, E.Kron) and _is_vec(right):
            new = _vec_trick(left, right.arg)
        elif isinstance(right, E.Kron) and isinstance(left, E.Transpose) and _is_vec(left.arg):
            flipped = E.kron(E.transpose(right.left), E.transpose(right.right))
            new = _vec_trick(flipped, left.arg.arg)
            new = None if new is None else E.transpose(new)
        else:
            continue
        if new is not None:
            return E.mul(*fs[:i], new, *fs[i + 2:])
    return None


def vec_of_unvec(e: E.Apply, ctx=None) -> E.Expr | None:
    return e.arg.arg if isinstance(e.arg, E.Unvec) else None


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
