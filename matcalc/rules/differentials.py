"""The differential of every node type, as a table.

Layer L2: imports expr, steps, errors and the elementwise registry.  A rule
gets the node and the differentials of its children (None where a child is
constant) and returns the node's differential, or None if it is zero.
Linear operations are declared linear and multilinear ones multilinear;
their rules follow from that.  Equation numbers are the Matrix Cookbook's.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Fn
from ..steps import Rule
from .elementwise import ELEMENTWISE

D = Optional[E.Expr]


@dataclass(frozen=True)
class DiffRule:
    rule: Rule
    apply: Callable[[E.Expr, tuple[D, ...]], D]


def _sum(terms) -> D:
    terms = [t for t in terms if t is not None]
    return E.add(*terms) if terms else None


def linear(rule: Rule) -> DiffRule:
    """d op(X, ...) = op(dX, ...) for an operation linear in all its children."""
    def apply(e, dk):
        if all(d is None for d in dk):
            return None
        if isinstance(e, E.Add):
            return _sum(dk)
        kids = tuple(d if d is not None else E.zero(k.shape) for d, k in zip(dk, e.children()))
        return e.with_children(kids)
    return DiffRule(rule, apply)


def multilinear(rule: Rule) -> DiffRule:
    """The product rule: d(A∘B∘C) = dA∘B∘C + A∘dB∘C + A∘B∘dC."""
    def apply(e, dk):
        kids = e.children()
        return _sum(e.with_children(kids[:i] + (d,) + kids[i + 1:]) for i, d in enumerate(dk) if d is not None)
    return DiffRule(rule, apply)


def _unary(rule: Rule, fn: Callable[[E.Expr, E.Expr, E.Expr], E.Expr]) -> DiffRule:
    """A rule for a one-argument node: fn(node, arg, d arg)."""
    return DiffRule(rule, lambda e, dk: None if dk[0] is None else fn(e, e.children()[0], dk[0]))


def _elementwise(e: E.Apply, x: E.Expr, dx: E.Expr) -> E.Expr:
    fprime = ELEMENTWISE[e.fn].derivative(x, e)
    return E.mul(fprime, dx) if x.is_scalar else E.hadamard(fprime, dx)


def _power(e: E.Power, dk) -> D:
    """d(B^p) = p B^(p-1) dB  (+ B^p log(B) dp when the exponent varies)."""
    b, p = e.base, e.exponent
    db, dp = dk
    terms = []
    if db is not None:
        lowered = E.Const(p.value - 1) if isinstance(p, E.Const) else E.add(p, E.MINUS_ONE)
        slope = E.mul(p, E.power(b, lowered))
        terms.append(E.mul(slope, db) if b.is_scalar else E.hadamard(slope, db))
    if dp is not None:
        log_b = E.apply(Fn.LOG, b)
        terms.append(E.mul(dp, E.mul(e, log_b) if b.is_scalar else E.hadamard(e, log_b)))
    return _sum(terms)


def _matpow(e: E.MatPow, x: E.Expr, dx: E.Expr) -> E.Expr:
    """d(X^k) = Σ_{i<k} X^i dX X^(k-1-i)."""
    def pw(i):
        return () if i == 0 else (x,) if i == 1 else (E.matpow(x, i),)
    return E.add(*(E.mul(*pw(i), dx, *pw(e.k - 1 - i)) for i in range(e.k)))


def _inverse(e, x, dx):
    return E.neg(E.mul(e, dx, e))                                  # (59)


def _det(e, x, dx):
    return E.mul(e, E.apply(Fn.TRACE, E.mul(E.apply(Fn.INV, x), dx)))  # (46)


def _logdet(e, x, dx):
    return E.apply(Fn.TRACE, E.mul(E.apply(Fn.INV, x), dx))      # (57) for det X > 0


def _norm2(e, x, dx):
    return E.mul(E.power(e, E.MINUS_ONE), E.frobenius(x, dx))


def _norm1(e, x, dx):
    return E.frobenius(E.apply(Fn.SIGN, x), dx)


def _softmax(e, x, dx):
    own = E.mul(e, dx) if x.is_scalar else E.hadamard(e, dx)     # a vector(1) is 1x1
    return E.add(own, E.neg(E.mul(e, E.transpose(e), dx)))


def _logsumexp(e, x, dx):
    return E.mul(E.transpose(E.apply(Fn.SOFTMAX, x)), dx)


def _along(axis: int, p: E.Expr) -> E.Expr:
    """sum(P, axis) repeated back to P's shape: 11ᵀP down the columns, P11ᵀ across the rows."""
    total = E.apply(Fn.SUM_COLS if axis == 1 else Fn.SUM_ROWS, p)
    return (E.mul(E.ones((p.shape[0], 1)), total) if axis == 1
            else E.mul(total, E.ones((1, p.shape[1]))))


def _softmax_axis(e, x, dx):
    """dS = S⊙dZ − S⊙(the sums of S⊙dZ along the axis, repeated): each slice is a softmax."""
    own = E.hadamard(e, dx)
    return E.add(own, E.neg(E.hadamard(e, _along(E.AXIS[e.fn], own))))


def _logsumexp_axis(e, x, dx):
    axis = E.AXIS[e.fn]
    s = E.apply(Fn.SOFTMAX_COLS if axis == 1 else Fn.SOFTMAX_ROWS, x)
    return E.apply(Fn.SUM_COLS if axis == 1 else Fn.SUM_ROWS, E.hadamard(s, dx))


def _call(e, x, dx):
    g = E.grad_call(e.name, x)
    return E.mul(g, dx) if x.is_scalar else E.frobenius(g, dx)


def _grad_call(e, x, dx):
    raise UnsupportedError(f"the derivative of grad_{e.name} (a second derivative of the opaque "
                           f"function {e.name}) is not available")


# ------------------------------------------------ matrix functions (docs/matrix-functions.md)

def _sym(a: E.Expr) -> E.Expr:
    """½(A + Aᵀ): eig* and chol read the symmetric part of their argument."""
    return E.mul(E.Const(Fraction(1, 2)), E.add(a, E.transpose(a)))


def _frechet(e, x, dx):
    return E.frechet_adj(e.fn, E.transpose(x), dx)             # L_f(X, dX) = f_adj(Xᵀ, dX)


def _frechet_adj(e: E.FrechetAdj, dk) -> D:
    dx, dg = dk
    if dx is not None:
        raise UnsupportedError(f"the derivative of {E.FRECHET_ADJ[e.fn]}(Y, G) in Y (a second "
                               f"Fréchet derivative of {e.fn.text}) is not available")
    return E.frechet_adj(e.fn, e.x, dg)


def _frechet_jac(e, x, dx):
    raise UnsupportedError(f"the derivative of {E.FRECHET_ADJ[e.fn]}_jac (a third derivative of "
                           f"{e.fn.text}) is not available")


def _solve(e: E.Solve, dk) -> D:
    da, db = dk
    rhs = [db] if db is not None else []
    if da is not None:
        rhs.append(E.neg(E.mul(da, e)))
    return E.solve(e.a, E.add(*rhs))


def _eigvals(e, x, dx):
    u = E.apply(Fn.EIGVECS, x)
    return E.apply(Fn.DIAGV, E.mul(E.transpose(u), dx, u))


def _eigen_extreme(vector: Fn):
    def rule(e, x, dx):
        u = E.apply(vector, x)
        return E.mul(E.transpose(u), dx, u)
    return rule


def _eigvec(value: Fn):
    def rule(e, x, dx):                # du = (λI − S)⁺ sym(dS) u
        gap = E.add(E.mul(E.apply(value, x), E.Identity(x.shape)), E.neg(_sym(x)))
        return E.mul(E.apply(Fn.PINV, gap), _sym(dx), e)
    return rule


def _eigvecs(e, x, dx):
    raise UnsupportedError("the derivative of eigvecs(S) (a second derivative of eigvals) is not available")


def _norm_nuc(e, x, dx):               # U Vᵀ of the thin SVD, polar(X)
    return E.frobenius(E.apply(Fn.POLAR, x), dx)


def _polar(e, x, dx):
    raise UnsupportedError("the derivative of polar(X) (a second derivative of norm_nuc) is not available")


def _norm_spec(e, x, dx):              # u₁ v₁ᵀ, v₁ = umax(XᵀX), u₁ = X v₁ / σ₁
    v = E.apply(Fn.EIGVEC_MAX, E.mul(E.transpose(x), x))
    return E.frobenius(E.mul(E.power(e, E.MINUS_ONE), x, v, E.transpose(v)), dx)


def _chol(e, x, dx):                   # dL = L Φ(L⁻¹ sym(dS) L⁻ᵀ)
    inv = E.apply(Fn.INV, e)
    return E.mul(e, E.apply(Fn.TRIL_HALF, E.mul(inv, _sym(dx), E.transpose(inv))))


def _pinv(e, x, dx):                   # constant rank (Golub & Pereyra 1973, (4.12))
    m, n = x.shape
    dxt = E.transpose(dx)
    return E.add(E.neg(E.mul(e, dx, e)),
                 E.mul(e, E.transpose(e), dxt, E.add(E.Identity((m, m)), E.neg(E.mul(x, e)))),
                 E.mul(E.add(E.Identity((n, n)), E.neg(E.mul(e, x))), dxt, E.transpose(e), e))


def _adj(e, x, dx):                    # adj X = det(X) X⁻¹
    inv = E.apply(Fn.INV, x)
    return E.add(E.mul(E.apply(Fn.TRACE, E.mul(inv, dx)), e), E.neg(E.mul(e, dx, inv)))


MATRIX_FUNCTION_RULES = {
    **{fn: _unary(Rule(f"Fréchet derivative of {fn.text}",
                       f"d {fn.text}(X) = L(X, dX) = {name}(Xᵀ, dX)"), _frechet)
       for fn, name in E.FRECHET_ADJ.items()},
    E.FrechetAdj: DiffRule(Rule("linearity of the Fréchet derivative", "d f_adj(Y, G) = f_adj(Y, dG)"),
                           _frechet_adj),
    E.FrechetJac: _unary(Rule("Fréchet Jacobian", ""), _frechet_jac),
    E.Solve: DiffRule(Rule("derivative of a solve", "d solve(A, B) = solve(A, dB − dA solve(A, B))"), _solve),
    Fn.EIGVALS: _unary(Rule("eigenvalue perturbation (simple eigenvalues)", "dλᵢ = uᵢᵀ dS uᵢ (simple eigenvalues)"), _eigvals),
    Fn.EIGMAX: _unary(Rule("eigenvalue perturbation (λmax simple)", "dλmax = uᵀ dS u (λmax simple)"),
                      _eigen_extreme(Fn.EIGVEC_MAX)),
    Fn.EIGMIN: _unary(Rule("eigenvalue perturbation (λmin simple)", "dλmin = uᵀ dS u (λmin simple)"),
                      _eigen_extreme(Fn.EIGVEC_MIN)),
    Fn.EIGVEC_MAX: _unary(Rule("eigenvector perturbation (λmax simple)", "du = (λI − S)⁺ dS u"),
                          _eigvec(Fn.EIGMAX)),
    Fn.EIGVEC_MIN: _unary(Rule("eigenvector perturbation (λmin simple)", "du = (λI − S)⁺ dS u"),
                          _eigvec(Fn.EIGMIN)),
    Fn.EIGVECS: _unary(Rule("eigenvectors", ""), _eigvecs),
    Fn.NORM_NUC: _unary(Rule("derivative of the nuclear norm (full rank)", "d‖X‖∗ = U Vᵀ : dX (full rank)"), _norm_nuc),
    Fn.NORM_SPEC: _unary(Rule("derivative of the spectral norm (σ₁ simple)", "d‖X‖₂ = u₁ v₁ᵀ : dX (σ₁ simple)"),
                         _norm_spec),
    Fn.POLAR: _unary(Rule("polar factor", ""), _polar),
    Fn.CHOL: _unary(Rule("Murray's formula", "d chol(S) = L Φ(L⁻¹ dS L⁻ᵀ)"), _chol),
    Fn.PINV: _unary(Rule("derivative of the pseudo-inverse (constant rank)",
                         "dX⁺ = −X⁺dX X⁺ + X⁺X⁺ᵀdXᵀ(I − XX⁺) + (I − X⁺X)dXᵀX⁺ᵀX⁺ (constant rank)"), _pinv),
    Fn.ADJ: _unary(Rule("derivative of the adjugate", "d adj(X) = tr(X⁻¹dX) adj(X) − adj(X) dX X⁻¹"), _adj),
    Fn.TRIL_HALF: linear(Rule("linearity", "d Φ(M) = Φ(dM)")),
}


LINEAR = Rule("linearity", "d(A + B) = dA + dB, d(Aᵀ) = (dA)ᵀ, d tr(A) = tr(dA)")
PRODUCT = Rule("product rule", "d(AB) = dA B + A dB", "(37)")
HADAMARD = Rule("product rule (Hadamard)", "d(A⊙B) = dA⊙B + A⊙dB", "(38)")
KRONECKER = Rule("product rule (Kronecker)", "d(A⊗B) = dA⊗B + A⊗dB", "(39)")
FROBENIUS = Rule("product rule (Frobenius)", "d(A:B) = dA:B + A:dB")
KRONECKER_ADJOINT = Rule("product rule (Kronecker adjoint)",
                         "d kron_adj_left(A, G) = kron_adj_left(dA, G) + kron_adj_left(A, dG)")
ELEMENTWISE_CHAIN = Rule("elementwise chain rule", "d f(X) = f'(X) ⊙ dX")
CHAIN = Rule("chain rule", "d f(X) = ∇f(X) : dX")

# Keyed by node class, or by Fn for Apply nodes.
DIFFERENTIALS: dict[object, DiffRule] = {
    E.Add: linear(LINEAR),
    E.Transpose: linear(LINEAR),
    E.Broadcast: linear(LINEAR),
    Fn.TRACE: linear(LINEAR),
    Fn.DIAG: linear(LINEAR),
    Fn.DIAGV: linear(LINEAR),
    Fn.VEC: linear(LINEAR),
    E.Unvec: linear(LINEAR),
    Fn.SUM: linear(LINEAR),
    E.Mul: multilinear(PRODUCT),
    E.Hadamard: multilinear(HADAMARD),
    E.Kron: multilinear(KRONECKER),
    E.KronAdjLeft: multilinear(KRONECKER_ADJOINT),
    E.KronAdjRight: multilinear(KRONECKER_ADJOINT),
    E.Frobenius: multilinear(FROBENIUS),
    E.Power: DiffRule(Rule("power rule", "d(B^p) = p B^(p-1) dB"), _power),
    E.MatPow: _unary(Rule("matrix power", "d(X^k) = Σ X^i dX X^(k-1-i)"), _matpow),
    Fn.INV: _unary(Rule("derivative of the inverse", "d X⁻¹ = −X⁻¹ dX X⁻¹", "(59)"), _inverse),
    Fn.DET: _unary(Rule("Jacobi's formula", "d det X = det X tr(X⁻¹ dX)", "(46)"), _det),
    Fn.LOGDET: _unary(Rule("derivative of log det", "d log det X = tr(X⁻¹ dX)", "(57)"), _logdet),
    Fn.NORM2: _unary(Rule("derivative of the 2-norm", "d‖X‖ = X:dX / ‖X‖"), _norm2),
    Fn.NORM1: _unary(Rule("derivative of the 1-norm", "d‖X‖₁ = sign(X):dX"), _norm1),
    Fn.SOFTMAX: _unary(Rule("derivative of softmax", "d s = (diag(s) − s sᵀ) dx, s = softmax(x)"), _softmax),
    Fn.LOGSUMEXP: _unary(Rule("derivative of logsumexp", "d logsumexp(x) = softmax(x)ᵀ dx"), _logsumexp),
    Fn.SUM_COLS: linear(LINEAR),
    Fn.SUM_ROWS: linear(LINEAR),
    **{fn: _unary(Rule("derivative of softmax along an axis",
                       "dS = S⊙dZ − S⊙(sums of S⊙dZ along the axis), S = softmax(Z, k)"), _softmax_axis)
       for fn in (Fn.SOFTMAX_COLS, Fn.SOFTMAX_ROWS)},
    **{fn: _unary(Rule("derivative of logsumexp along an axis",
                       "d logsumexp(Z, k) = sum(softmax(Z, k)⊙dZ, k)"), _logsumexp_axis)
       for fn in (Fn.LOGSUMEXP_COLS, Fn.LOGSUMEXP_ROWS)},
    E.Call: _unary(CHAIN, _call),
    E.GradCall: _unary(CHAIN, _grad_call),
    **{fn: _unary(ELEMENTWISE_CHAIN, _elementwise) for fn in ELEMENTWISE},
    **MATRIX_FUNCTION_RULES,
}


def rule_for(e: E.Expr) -> DiffRule:
    return DIFFERENTIALS[e.fn if isinstance(e, E.Apply) else type(e)]
