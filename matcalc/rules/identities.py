"""Identities that shorten a result to the form a textbook writes: cancellation in
elementwise products, sums of diagonals, determinants and inverses of powers, sums of
constants, Kronecker and vec products.

Layer L2: imports expr, steps, rules.forms, rules.polynomial.  Each rule says why it
holds and where: a rule that cancels a factor does so only where that factor is
non-zero wherever the original expression is defined.  algebra.RULES lists them.
"""
from __future__ import annotations

from .. import expr as E
from ..expr import Fn
from .forms import signed_power, split_coefficient, transposed
from .polynomial import shorter_expansion


def shorter_elementwise(e, ctx):
    """Expand an elementwise sum/product into monomials, collect, keep it if smaller
    (rules/polynomial.py gives the domain argument: exponents of a base only add up)."""
    if isinstance(e, E.Mul) and not all(f.is_scalar for f in e.factors):
        return None
    return shorter_expansion(e, ctx.key, ctx.sizes)


def _diag_term(t: E.Expr):
    """c·diag(v) -> c·v (c any scalar factors), else None."""
    if isinstance(t, E.Apply) and t.fn is Fn.DIAG:
        return t.arg
    if isinstance(t, E.Mul):
        matrices = [f for f in t.factors if not f.is_scalar]
        if len(matrices) == 1 and isinstance(matrices[0], E.Apply) and matrices[0].fn is Fn.DIAG:
            return E.mul(*(f for f in t.factors if f.is_scalar), matrices[0].arg)
    return None


def sum_of_diagonals(e, ctx):
    """a·diag(u) + b·diag(v) = diag(a u + b v): diag is linear (valid everywhere)."""
    parts = [(t, _diag_term(t)) for t in e.terms]
    diagonal = [v for _, v in parts if v is not None]
    if len(diagonal) < 2:
        return None
    rest = [t for t, v in parts if v is None]
    return E.add(E.apply(Fn.DIAG, E.add(*diagonal)), *rest)


def inverse_of_power(e, ctx):
    """(Xᵏ)⁻¹ = (X⁻¹)ᵏ: both exist exactly where X is invertible (det Xᵏ = (det X)ᵏ)."""
    a = e.arg
    if isinstance(a, E.MatPow):
        return E.matpow(E.apply(Fn.INV, a.base), a.k)
    return None


def determinant_of_power(e, ctx):
    """det(Xᵏ) = det(X)ᵏ (multiplicativity; for all X); det(X⁻¹) = det(X)⁻¹ wherever X⁻¹ exists;
    det(Xᵀ) = det(X)."""
    a = e.arg
    if isinstance(a, E.MatPow):
        return E.power(E.apply(Fn.DET, a.base), E.const(a.k))
    if isinstance(a, E.Apply) and a.fn is Fn.INV:
        return E.power(E.apply(Fn.DET, a.arg), E.MINUS_ONE)
    if isinstance(a, E.Transpose):
        return E.apply(Fn.DET, a.arg)
    return None


def sum_of_scaled(e, ctx):
    """sum(s A) = s sum(A) for a scalar s, and sum(c·1) = c sum(1): sum is linear, and so
    is a sum along an axis (sum(−G⊙P, 2) = −sum(G⊙P, 2))."""
    a = e.arg
    if isinstance(a, E.Broadcast) and not E.is_const(a.value, 1):
        return E.mul(a.value, E.apply(e.fn, E.ones(a.shape)))
    if isinstance(a, E.Mul) and not a.is_scalar:
        scalars = [f for f in a.factors if f.is_scalar]
        if scalars:
            return E.mul(*scalars, E.apply(e.fn, E.mul(*(f for f in a.factors if not f.is_scalar))))
    return None


def _hadamard_terms(t: E.Expr):
    """(scalar factors, elementwise factors) of a term s·(A ⊙ B ⊙ …), else None."""
    scalars, body = [], t
    if isinstance(t, E.Mul):
        scalars = [f for f in t.factors if f.is_scalar]
        rest = [f for f in t.factors if not f.is_scalar]
        if len(rest) != 1:
            return None
        body = rest[0]
    return (scalars, list(body.factors)) if isinstance(body, E.Hadamard) else None


def common_hadamard_factor(e, ctx):
    """A ⊙ C + B ⊙ C = (A + B) ⊙ C (⊙ distributes over +, everywhere): a softmax's
    backward pass P ⊙ G − P ⊙ (rowsum(G ⊙ P) 1ᵀ) is P ⊙ (G − rowsum(G ⊙ P) 1ᵀ), as
    textbooks write it, and one pass over P fewer in code.  A differential is not taken out
    (dy ⊙ a − dy ⊙ b): its coefficients are what the adjoint collects term by term."""
    parts = [_hadamard_terms(t) for t in e.terms]
    counts: dict[E.Expr, list[int]] = {}
    for i, p in enumerate(parts):
        for f in dict.fromkeys(p[1]) if p else ():
            if not isinstance(f, E.Broadcast) and not any(isinstance(n, E.Differential) for n in E.walk(f)):
                counts.setdefault(f, []).append(i)
    common = next((f for f, members in counts.items() if len(members) >= 2), None)
    if common is None:
        return None
    members = counts[common]
    rest = []
    for i in members:
        scalars, factors = parts[i]
        factors = list(factors)
        factors.remove(common)
        rest.append(E.mul(*scalars, E.hadamard(*factors)))
    factored = E.hadamard(common, E.add(*rest))
    others = [t for i, t in enumerate(e.terms) if i not in members]
    return E.add(factored, *others) if others else factored


def _vec_row(f: E.Expr):
    """vec(B)ᵀ -> B."""
    if isinstance(f, E.Transpose) and isinstance(f.arg, E.Apply) and f.arg.fn is Fn.VEC:
        return f.arg.arg
    return None


def _vec_column(f: E.Expr):
    return f.arg if isinstance(f, E.Apply) and f.fn is Fn.VEC else None


def kronecker_products(e, ctx):
    """In a matrix chain, with (C ⊗ A) vec(B) = vec(A B Cᵀ) (Magnus & Neudecker):
    vec(B)ᵀ (C ⊗ A) = vec(Aᵀ B C)ᵀ, (C ⊗ A) vec(B) = vec(A B Cᵀ), and the mixed product
    (A ⊗ B)(C ⊗ D) = (AC) ⊗ (BD).  All three are identities between defined products."""
    scalars = [f for f in e.factors if f.is_scalar]
    chain = [f for f in e.factors if not f.is_scalar]
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        new = None
        row = _vec_row(a)
        if row is not None and isinstance(b, E.Kron) and row.shape == (b.right.shape[0], b.left.shape[0]):
            new = transposed(E.apply(Fn.VEC, E.mul(transposed(b.right), row, b.left)))
        col = _vec_column(b)
        if new is None and col is not None and isinstance(a, E.Kron) \
                and col.shape == (a.right.shape[1], a.left.shape[1]):
            new = E.apply(Fn.VEC, E.mul(a.right, col, transposed(a.left)))
        if new is None and isinstance(a, E.Kron) and isinstance(b, E.Kron) \
                and a.left.shape[1] == b.left.shape[0] and a.right.shape[1] == b.right.shape[0]:
            new = E.kron(E.mul(a.left, b.left), E.mul(a.right, b.right))
        if new is not None:
            return E.mul(*scalars, *chain[:i], new, *chain[i + 2:])
    return None


def kron_of_scaled(e, ctx):
    """(aA) ⊗ (bB) = ab (A ⊗ B): scalars leave a Kronecker product (bilinear)."""
    if e.left.is_scalar or e.right.is_scalar:
        return None
    (ca, a), (cb, b) = split_coefficient(e.left), split_coefficient(e.right)
    if ca == 1 and cb == 1:
        return None
    return E.mul(E.Const(ca), E.Const(cb), E.kron(a, b))


def sign_times_self(bases: dict, order: list) -> None:
    """sign(u) ⊙ u = |u| (everywhere), in a table of base -> exponents: then
    |u|⁻¹ ⊙ sign(u) ⊙ u = 1 wherever |u|⁻¹ is defined."""
    for base in list(order):
        if not (isinstance(base, E.Apply) and base.fn is Fn.SIGN and bases.get(base) == [E.ONE]
                and bases.get(base.arg) == [E.ONE]):
            continue
        absolute = E.apply(Fn.ABS, base.arg)
        del bases[base], bases[base.arg]
        order.remove(base)
        if absolute in bases:
            order.remove(base.arg)
        else:
            order[order.index(base.arg)] = absolute
        bases.setdefault(absolute, []).append(E.ONE)


def _product_factors(p: E.Expr):
    """The factors of a product of square matrices (each then invertible where p is), or None."""
    if isinstance(p, E.Mul) and all(f.shape[0] == f.shape[1] and not f.is_scalar for f in p.factors):
        return list(p.factors)
    return None


def _inverse_factors(f: E.Expr):
    """inv(P) -> [inv(p_k), ..., inv(p_1)], inv(P)ᵀ -> [inv(p_1)ᵀ, ..., inv(p_k)ᵀ] for P = p_1 ⋯ p_k."""
    if isinstance(f, E.Apply) and f.fn is Fn.INV:
        factors = _product_factors(f.arg)
        return factors and [E.apply(Fn.INV, p) for p in reversed(factors)]
    if isinstance(f, E.Transpose) and isinstance(f.arg, E.Apply) and f.arg.fn is Fn.INV:
        factors = _product_factors(f.arg.arg)
        return factors and [transposed(E.apply(Fn.INV, p)) for p in factors]
    return None


def product_inverse_beside_factor(e, ctx):
    """(p_1 ⋯ p_k)⁻¹ = p_k⁻¹ ⋯ p_1⁻¹ for square p_i (P invertible makes every p_i
    invertible, det P = ∏ det p_i), written out only where a neighbour cancels:
    Aᵀ (AXB)⁻ᵀ Bᵀ = X⁻ᵀ.  Elsewhere the inverse of the product stays (one solve)."""
    scalars = [f for f in e.factors if f.is_scalar]
    chain = [f for f in e.factors if not f.is_scalar]
    for i, f in enumerate(chain):
        inverses = _inverse_factors(f)
        if not inverses:
            continue
        left = i > 0 and signed_power(chain[i - 1]) == (signed_power(inverses[0])[0], 1)
        right = i + 1 < len(chain) and signed_power(chain[i + 1]) == (signed_power(inverses[-1])[0], 1)
        if left or right:
            return E.mul(*scalars, *chain[:i], *inverses, *chain[i + 1:])
    return None


def one_minus(e: E.Expr) -> E.Expr | None:
    """u for 1 − u (the 1 a scalar or a broadcast one), else None."""
    if not (isinstance(e, E.Add) and len(e.terms) == 2):
        return None
    one, minus = e.terms
    if (E.is_const(one, 1) or (isinstance(one, E.Broadcast) and E.is_const(one.value, 1))) \
            and isinstance(minus, E.Mul) and len(minus.factors) == 2 and minus.factors[0] == E.MINUS_ONE:
        return minus.factors[1]
    return None


def log_of_sigmoid(e, ctx):
    """log σ(z) = −log(1 + e^(−z)) = −softplus(−z), and log(1 − σ(z)) = log σ(−z) = −softplus(z):
    equal everywhere, and finite where σ(z) rounds to 0 or 1 (z = ∓1000), where the log is not."""
    a = e.arg
    if isinstance(a, E.Apply) and a.fn is Fn.SIGMOID:
        return E.neg(E.apply(Fn.SOFTPLUS, E.neg(a.arg)))
    u = one_minus(a)
    if isinstance(u, E.Apply) and u.fn is Fn.SIGMOID:
        return E.neg(E.apply(Fn.SOFTPLUS, u.arg))
    return None


def log_of_softmax(e, ctx):
    """log softmax(z) = z − logsumexp(z) 1: equal everywhere, finite where an entry of
    softmax(z) underflows to 0; its Jacobian is I − 1 softmax(z)ᵀ."""
    a = e.arg
    if isinstance(a, E.Apply) and a.fn is Fn.SOFTMAX and not a.arg.is_scalar:
        return E.add(a.arg, E.neg(E.broadcast(E.apply(Fn.LOGSUMEXP, a.arg), a.shape)))
    return None


def _reciprocal_of(a: E.Expr, b: E.Expr) -> bool:
    return isinstance(b, E.Power) and E.is_const(b.exponent, -1) and b.base == a


def _as_column(row: E.Expr) -> E.Expr | None:
    """u for a row uᵀ, u⁻¹ for (uᵀ)⁻¹ (a transpose pushed into an elementwise power)."""
    if row.shape[0] != 1:
        return None
    if isinstance(row, E.Transpose):
        return row.arg
    if isinstance(row, E.Power) and isinstance(row.base, E.Transpose):
        return E.power(row.base.arg, row.exponent)
    return None


def inner_product_of_reciprocals(e, ctx):
    """uᵀ(u⁻¹) = (u⁻¹)ᵀu = Σᵢ uᵢ/uᵢ = sum(1), where u⁻¹ is defined (no entry of u is 0):
    log softmax's gradient is then 1 − n softmax(z), with no 0·∞ where softmax underflows."""
    scalars = [f for f in e.factors if f.is_scalar]
    chain = [f for f in e.factors if not f.is_scalar]
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        column = _as_column(a)
        if column is not None and b.shape[1] == 1 and (_reciprocal_of(column, b) or _reciprocal_of(b, column)):
            count = E.apply(Fn.SUM, E.ones(b.shape))
            return E.mul(*scalars, *chain[:i], count, *chain[i + 2:])
    return None


def _all_ones(e: E.Expr) -> bool:
    return isinstance(e, E.Broadcast) and E.is_const(e.value, 1)


def softmax_sums_to_one(e, ctx):
    """softmax(z)ᵀ1 = 1ᵀsoftmax(z) = 1, softmax(X, 2) 1 = 1, 1ᵀ softmax(X, 1) = 1ᵀ: each
    softmax sums to one along its axis (everywhere: its entries are exp(zᵢ)/Σⱼexp(zⱼ)).
    With a matrix of ones on the other side, the result is a matrix of ones."""
    scalars = [f for f in e.factors if f.is_scalar]
    chain = [f for f in e.factors if not f.is_scalar]
    softmax = lambda f, fn: isinstance(f, E.Apply) and f.fn is fn
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        if ((isinstance(a, E.Transpose) and softmax(a.arg, Fn.SOFTMAX) and _all_ones(b))
                or (_all_ones(a) and softmax(b, Fn.SOFTMAX))
                or (softmax(a, Fn.SOFTMAX_ROWS) and _all_ones(b))
                or (_all_ones(a) and softmax(b, Fn.SOFTMAX_COLS))):
            return E.mul(*scalars, *chain[:i], E.ones((a.shape[0], b.shape[1])), *chain[i + 2:])
    return None
