"""The adjoint of every linear operation: the Frobenius identities.

Layer L2: imports expr, steps, errors.  The differential dL is linear in the
differentials; written as G : ℓ(M), each linear operation ℓ moves onto G as
its adjoint (reverse mode, one operation at a time):

    ℓ(M)      G : ℓ(M) becomes       identity
    B M C     Bᵀ G Cᵀ : M            A:BC = BᵀA:C = ACᵀ:B
    Mᵀ        Gᵀ : M                 A:Bᵀ = Aᵀ:B
    B ⊙ M     (G ⊙ B) : M            A:(B⊙C) = (A⊙B):C
    A ⊗ M     kron_adj_left(A, G)    G:(A⊗M) = kron_adj_left(A, G):M   (docs/kron-vec.md)
    vec M     unvec(G)               G:vec(M) = unvec(G):M
    tr M      (g I) : M              tr(A) = I:A
    M + N     G:M + G:N              linearity

`apply(G, node, i)` returns the adjoint for the active child i.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import expr as E
from ..expr import Fn
from ..steps import Rule
from .algebra import frechet_along_identity
from .jacobians import vec


@dataclass(frozen=True)
class AdjointRule:
    rule: Rule
    apply: Callable[[E.Expr, E.Expr, int], E.Expr]


LEFT = Rule("move a left factor", "A : BC = BᵀA : C", "(Frobenius/trace cyclic property)")
RIGHT = Rule("move a right factor", "A : BC = ACᵀ : B")
BOTH = Rule("move both factors", "A : BMC = BᵀACᵀ : M")
SCALE = Rule("move a scalar", "A : (sB) = sA : B")
SCALAR_FACTOR = Rule("scalar factor of a matrix", "A : (sB) = (A:B) s")
TRANSPOSE = Rule("transposition", "A : Bᵀ = Aᵀ : B")
HADAMARD = Rule("Hadamard product", "A : (B⊙C) = (A⊙B) : C")
TRACE = Rule("trace as Frobenius product", "g tr(A) = gI : A")
FROBENIUS = Rule("scalar times Frobenius product", "g (B:M) = gB : M")
DIAG = Rule("diag", "G : diag(m) = diag(G) : m")
SUM = Rule("sum as Frobenius product", "g sum(M) = g11ᵀ : M")
BROADCAST = Rule("broadcast scalar", "G : (s11ᵀ) = sum(G) s")
LINEARITY = Rule("linearity", "G : (M + N) = G:M + G:N")


def _mul(G: E.Expr, e: E.Mul, i: int) -> tuple[Rule, E.Expr]:
    factors = e.factors
    target = factors[i]
    others = factors[:i] + factors[i + 1:]
    scalars = [f for f in others if f.is_scalar]
    left = [f for f in factors[:i] if not f.is_scalar]
    right = [f for f in factors[i + 1:] if not f.is_scalar]
    if target.is_scalar and not e.is_scalar:
        return SCALAR_FACTOR, E.mul(*scalars, E.frobenius(G, E.mul(*left, *right)))
    parts = list(scalars)
    if left:
        parts.append(E.transpose(E.mul(*left)))
    parts.append(G)
    if right:
        parts.append(E.transpose(E.mul(*right)))
    rule = BOTH if left and right else LEFT if left else RIGHT if right else SCALE
    return rule, E.mul(*parts)


KRON_LEFT = Rule("adjoint of A ⊗ M", "G : (A ⊗ M) = kron_adj_left(A, G) : M")
KRON_RIGHT = Rule("adjoint of M ⊗ B", "G : (M ⊗ B) = kron_adj_right(G, B) : M")
KRON_ADJ = Rule("adjoint of a Kronecker adjoint", "H : kron_adj_left(A, G) = (A ⊗ H) : G = "
                "kron_adj_right(G, H) : A")


def _kron(G: E.Expr, e: E.Kron, i: int) -> tuple[Rule, E.Expr]:
    if i == 0:                       # dA ⊗ B
        return KRON_RIGHT, E.kron_adj_right(G, e.right)
    return KRON_LEFT, E.kron_adj_left(e.left, G)


def _fixed(rule: Rule, fn) -> AdjointRule:
    return AdjointRule(rule, lambda G, e, i: (rule, fn(G, e, i)))


FRECHET_ADJOINT = Rule("adjoint of the Fréchet derivative",
                       "G : f_adj(Y, M) = f_adj(Yᵀ, G) : M, f_adj(Y, G) = L_f(Yᵀ, G)")
FRECHET_ALONG_I = Rule("Fréchet derivative along I", "cI : L_f(X, M) = c f'(X)ᵀ : M: "
                       "expm(X)ᵀ, (X⁻¹)ᵀ for logm, ½ (sqrtm(X)⁻¹)ᵀ for sqrtm")


def _frechet(G: E.Expr, e: E.FrechetAdj) -> tuple[Rule, E.Expr]:
    moved = E.frechet_adj(e.fn, E.transpose(e.x), G)
    closed = frechet_along_identity(moved)
    return (FRECHET_ALONG_I, closed) if closed is not None else (FRECHET_ADJOINT, moved)


ADJOINTS: dict[object, AdjointRule] = {
    E.Mul: AdjointRule(LEFT, _mul),   # picks LEFT/RIGHT/BOTH/SCALE per case
    E.Add: _fixed(LINEARITY, lambda G, e, i: G),
    E.Transpose: _fixed(TRANSPOSE, lambda G, e, i: E.transpose(G)),
    E.Hadamard: _fixed(HADAMARD, lambda G, e, i: E.hadamard(G, *(e.factors[:i] + e.factors[i + 1:]))),
    E.Frobenius: _fixed(FROBENIUS, lambda G, e, i: E.mul(G, e.children()[1 - i])),
    E.Broadcast: _fixed(BROADCAST, lambda G, e, i: E.apply(Fn.SUM, G)),
    Fn.TRACE: _fixed(TRACE, lambda G, e, i: E.mul(G, E.Identity(e.arg.shape))),
    Fn.DIAG: _fixed(DIAG, lambda G, e, i: E.apply(Fn.DIAGV, G)),
    Fn.DIAGV: _fixed(DIAG, lambda G, e, i: E.apply(Fn.DIAG, G)),
    Fn.SUM: _fixed(SUM, lambda G, e, i: E.broadcast(G, e.arg.shape)),
    # the adjoint of a sum along an axis is the broadcast back along it
    Fn.SUM_COLS: _fixed(Rule("sum down the columns", "G : 1ᵀM = 1G : M"),
                        lambda G, e, i: E.mul(E.ones((e.arg.shape[0], 1)), G)),
    Fn.SUM_ROWS: _fixed(Rule("sum across the rows", "G : M1 = G1ᵀ : M"),
                        lambda G, e, i: E.mul(G, E.ones((1, e.arg.shape[1])))),
    Fn.VEC: _fixed(Rule("adjoint of vec", "G : vec(M) = unvec(G) : M"),
                   lambda G, e, i: E.unvec(G, e.arg.shape)),
    E.Unvec: _fixed(Rule("adjoint of unvec", "G : unvec(v) = vec(G) : v"), lambda G, e, i: vec(G)),
    E.Kron: AdjointRule(KRON_LEFT, _kron),          # picks KRON_LEFT/KRON_RIGHT per side
    E.KronAdjLeft: AdjointRule(KRON_ADJ, lambda G, e, i: (KRON_ADJ, E.kron(e.a, G) if i == 1
                                                          else E.kron_adj_right(e.g, G))),
    E.KronAdjRight: AdjointRule(KRON_ADJ, lambda G, e, i: (KRON_ADJ, E.kron(G, e.b) if i == 0
                                                           else E.kron_adj_left(G, e.g))),
    E.Solve: _fixed(Rule("adjoint of a solve", "G : solve(A, M) = solve(Aᵀ, G) : M"),
                    lambda G, e, i: E.solve(E.transpose(e.a), G)),
    Fn.TRIL_HALF: _fixed(Rule("Φ is self-adjoint", "G : Φ(M) = Φ(G) : M"),
                         lambda G, e, i: E.apply(Fn.TRIL_HALF, G)),
    E.FrechetAdj: AdjointRule(FRECHET_ADJOINT, lambda G, e, i: _frechet(G, e)),
}


def adjoint_rule(e: E.Expr) -> AdjointRule:
    key = e.fn if isinstance(e, E.Apply) else type(e)
    try:
        return ADJOINTS[key]
    except KeyError:
        raise AssertionError(f"{key} is not linear: no adjoint") from None
