"""The Jacobian of every linear operation, in Magnus–Neudecker vec form.

Layer L2: imports expr, steps, errors.  For ℓ(M) linear in M,
d vec(ℓ(M)) = J_ℓ d vec(M); `apply(node, i)` gives J_ℓ for the active child i:

    ℓ(M)        J_ℓ                      identity
    B M C       Cᵀ ⊗ B                   vec(BMC) = (Cᵀ⊗B) vec(M)
    B m         B                        (m a vector)
    b ⊙ m       diag(b)                  vec(b⊙m) = diag(vec b) vec(m)
    s C         vec(C)                   (s a scalar)
    tr M        vec(I)ᵀ
    a : M       vec(a)ᵀ
    sum M       1ᵀ
    M + N       I (each term)

A transposed matrix brings in the commutation matrix K (K vec(M) = vec(Mᵀ)), and
so does a Kronecker product (Magnus–Neudecker Theorem 3.10); diag is a selection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import expr as E
from ..expr import Fn
from ..shapes import dim_product, is_column, is_row
from ..steps import Rule


@dataclass(frozen=True)
class JacobianRule:
    rule: Rule
    apply: Callable[[E.Expr, int], E.Expr]


def vec(e: E.Expr) -> E.Expr:
    """vec(e), where a column vector is its own vec and a row vector its transpose."""
    if is_column(e.shape) or e.is_scalar:
        return e
    if is_row(e.shape):
        return E.transpose(e)
    return E.apply(Fn.VEC, e)


def identity(n) -> E.Expr:
    return E.ONE if n == 1 else E.Identity((n, n))


def kron(a: E.Expr, b: E.Expr) -> E.Expr:
    """a ⊗ b with the trivial cases (1×1, I ⊗ I) done."""
    if a.is_scalar:
        return E.mul(a, b)
    if b.is_scalar:
        return E.mul(b, a)
    if isinstance(a, E.Identity) and isinstance(b, E.Identity):
        return E.Identity((dim_product(a.shape[0], b.shape[0]),) * 2)
    return E.kron(a, b)


def _size(shape) -> object:
    return dim_product(shape[0], shape[1])


def _mul(e: E.Mul, i: int) -> E.Expr:
    target = e.factors[i]
    scalars = [f for j, f in enumerate(e.factors) if f.is_scalar and j != i]
    left = [f for f in e.factors[:i] if not f.is_scalar]
    right = [f for f in e.factors[i + 1:] if not f.is_scalar]
    if target.is_scalar:                   # s C: vec(C) ds
        return E.mul(*scalars, vec(E.mul(*left, *right))) if left or right else E.mul(*scalars, E.ONE)
    B = E.mul(*left) if left else identity(target.shape[0])
    C = E.mul(*right) if right else identity(target.shape[1])
    return E.mul(*scalars, kron(E.transpose(C) if not C.is_scalar else C, B))


def _transpose(e: E.Transpose, i: int) -> E.Expr:
    if is_column(e.arg.shape) or is_row(e.arg.shape) or e.arg.is_scalar:
        return identity(_size(e.shape))
    return E.commutation(*e.arg.shape)         # vec(Mᵀ) = K vec(M)


def _hadamard(e: E.Hadamard, i: int) -> E.Expr:
    others = e.factors[:i] + e.factors[i + 1:]
    if e.is_scalar:                        # 1x1 factors (a vector(1)): the product is the scalar's
        return E.mul(*others)
    return E.apply(Fn.DIAG, vec(E.hadamard(*others)))


def _diagonal_selection(n) -> E.Expr:
    """P (n × n²) with P vec(M) = diag(M): row i picks entry i(n+1), where the
    column of 1ᵀ⊗I (i = b) and of I⊗1ᵀ (i = a) agree for column a·n + b."""
    row, eye = E.ones((1, n)), E.Identity((n, n))
    return E.hadamard(E.kron(row, eye), E.kron(eye, row))


def commutation(m, n) -> E.Expr:
    """K with K vec(M) = vec(Mᵀ) for an m×n M: the identity where M is a vector."""
    return identity(dim_product(m, n)) if 1 in (m, n) else E.commutation(m, n)


def _kron_permutation(left, right) -> E.Expr:
    """P with vec(L ⊗ R) = P (vec L ⊗ vec R), L p×q, R m×n: P = I_q ⊗ K_np ⊗ I_m
    (Magnus & Neudecker, Theorem 3.10)."""
    (p, q), (m, n) = left, right
    return kron(identity(q), kron(commutation(n, p), identity(m)))


def _kron(e: E.Kron, i: int) -> E.Expr:
    """d vec(dL ⊗ R) = P (I ⊗ vec R) d vec(L);  d vec(L ⊗ dR) = P (vec L ⊗ I) d vec(R)."""
    P = _kron_permutation(e.left.shape, e.right.shape)
    if i == 0:
        return E.mul(P, kron(identity(_size(e.left.shape)), vec(e.right)))
    return E.mul(P, kron(vec(e.left), identity(_size(e.right.shape))))


def _kron_adj_left(e: E.KronAdjLeft, i: int) -> E.Expr:
    """The transpose of the Jacobian of M ↦ A ⊗ M in G; in A, unvec(Pᵀ vec G) (mn × pq)."""
    P = _kron_permutation(e.a.shape, e.shape)
    if i == 1:
        return E.transpose(E.mul(P, kron(vec(e.a), identity(_size(e.shape)))))
    return E.unvec(E.mul(E.transpose(P), vec(e.g)), (_size(e.shape), _size(e.a.shape)))


def _kron_adj_right(e: E.KronAdjRight, i: int) -> E.Expr:
    """The transpose of the Jacobian of M ↦ M ⊗ B in G; in B, unvec(Pᵀ vec G)ᵀ (mn × pq)."""
    P = _kron_permutation(e.shape, e.b.shape)
    if i == 0:
        return E.transpose(E.mul(P, kron(identity(_size(e.shape)), vec(e.b))))
    return E.transpose(E.unvec(E.mul(E.transpose(P), vec(e.g)), (_size(e.b.shape), _size(e.shape))))


JACOBIANS: dict[object, JacobianRule] = {
    E.Add: JacobianRule(Rule("linearity", "d(A + B) = dA + dB"),
                        lambda e, i: identity(_size(e.shape))),
    E.Mul: JacobianRule(Rule("vec of a product", "vec(BMC) = (Cᵀ⊗B) vec(M)"), _mul),
    E.Transpose: JacobianRule(Rule("commutation matrix", "vec(Mᵀ) = K vec(M)"), _transpose),
    E.Hadamard: JacobianRule(Rule("Hadamard as a diagonal", "vec(b⊙M) = diag(vec b) vec(M)"), _hadamard),
    E.Frobenius: JacobianRule(Rule("Frobenius product", "d(a:M) = vec(a)ᵀ d vec(M)"),
                              lambda e, i: E.transpose(vec(e.children()[1 - i]))),
    E.Broadcast: JacobianRule(Rule("broadcast", "vec(s11ᵀ) = 1 s"),
                              lambda e, i: E.broadcast(E.ONE, (_size(e.shape), 1))),
    Fn.TRACE: JacobianRule(Rule("trace", "tr(M) = vec(I)ᵀ vec(M)"),
                           lambda e, i: E.transpose(vec(E.Identity(e.arg.shape)))),
    Fn.SUM: JacobianRule(Rule("sum", "sum(M) = 1ᵀ vec(M)"),
                         lambda e, i: E.broadcast(E.ONE, (1, _size(e.arg.shape)))),
    Fn.VEC: JacobianRule(Rule("vec", "vec(M)"), lambda e, i: identity(_size(e.shape))),
    Fn.SUM_COLS: JacobianRule(Rule("sum down the columns", "vec(1ᵀM) = (I ⊗ 1ᵀ) vec(M)"),
                              lambda e, i: kron(identity(e.arg.shape[1]), E.ones((1, e.arg.shape[0])))),
    Fn.SUM_ROWS: JacobianRule(Rule("sum across the rows", "vec(M1) = (1ᵀ ⊗ I) vec(M)"),
                              lambda e, i: kron(E.ones((1, e.arg.shape[1])), identity(e.arg.shape[0]))),
    E.Unvec: JacobianRule(Rule("unvec", "vec(unvec(v)) = v"), lambda e, i: identity(_size(e.shape))),
    Fn.DIAG: JacobianRule(Rule("diag as a selection", "vec(diag(m)) = Pᵀ m, P = (1ᵀ⊗I) ⊙ (I⊗1ᵀ)"),
                          lambda e, i: E.transpose(_diagonal_selection(e.shape[0]))),
    Fn.DIAGV: JacobianRule(Rule("diag as a selection", "diag(M) = P vec(M), P = (1ᵀ⊗I) ⊙ (I⊗1ᵀ)"),
                           lambda e, i: _diagonal_selection(e.shape[0])),
    E.Kron: JacobianRule(Rule("vec of a Kronecker product", "vec(A ⊗ B) = (I ⊗ K ⊗ I)(vec A ⊗ vec B) "
                              "(Magnus–Neudecker Theorem 3.10)"), _kron),
    E.KronAdjLeft: JacobianRule(Rule("vec of a Kronecker adjoint", "vec(kron_adj_left(A, G)) = "
                                     "((I ⊗ K ⊗ I)(vec A ⊗ I))ᵀ vec(G)"), _kron_adj_left),
    E.KronAdjRight: JacobianRule(Rule("vec of a Kronecker adjoint", "vec(kron_adj_right(G, B)) = "
                                      "((I ⊗ K ⊗ I)(I ⊗ vec B))ᵀ vec(G)"), _kron_adj_right),
    E.Solve: JacobianRule(Rule("vec of a solve", "vec(solve(A, M)) = (I ⊗ A⁻¹) vec(M)"),
                          lambda e, i: kron(identity(e.shape[1]), E.apply(Fn.INV, e.a))),
    Fn.TRIL_HALF: JacobianRule(Rule("Φ as a diagonal", "vec(Φ(M)) = diag(vec Φ(11ᵀ)) vec(M)"),
                               lambda e, i: E.apply(Fn.DIAG, vec(E.apply(Fn.TRIL_HALF, E.ones(e.shape))))),
    E.FrechetAdj: JacobianRule(Rule("Fréchet derivative in vec form", "vec(f_adj(Y, M)) = f_adj_jac(Y) vec(M)"),
                               lambda e, i: E.frechet_jac(e.fn, e.x)),
}


def jacobian_rule(e: E.Expr) -> JacobianRule:
    return JACOBIANS[e.fn if isinstance(e, E.Apply) else type(e)]
