"""Canonicalisation rules, as data: node type -> list of named rewrites.

Layer L2: imports expr, steps.  Each rewrite returns a new expression or
None when it does not apply; the driver (engine/simplify.py) applies them
bottom-up to a fixpoint.  Commutative operands are ordered by `ctx.key`, a
total order the driver supplies, never by a rule that flips them back.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional


from .. import expr as E
from ..expr import Fn
from ..steps import Rule
from .elementwise import ELEMENTWISE
from .kronecker import (frobenius_of_inverse, inverse_of_kron, kron_adj_rules, unvec_rules,
                        vec_rules)
from .identities import (determinant_of_power, inverse_of_power, kron_of_scaled, kronecker_products,
                         inner_product_of_reciprocals, log_of_sigmoid, log_of_softmax,
                         product_inverse_beside_factor, shorter_elementwise, sign_times_self, softmax_sums_to_one,
                         sum_of_diagonals, sum_of_scaled, common_hadamard_factor)
from .forms import (from_signed_power, is_vector_shape, scaled as _scaled, signed_power,
                    split_coefficient, transposed)
from .symmetry import is_symmetric


@dataclass(frozen=True)
class AlgebraRule:
    rule: Rule
    apply: Callable[[E.Expr, "Context"], Optional[E.Expr]]


class Context:
    """What rules may ask the driver: a total order on expressions."""
    def __init__(self, key: Callable[[E.Expr], str]):
        self.key = key
        self.sizes: dict[E.Expr, int] = {}      # tree sizes, the cost a cost-based rule minimises


# ------------------------------------------------------------ predicates

def is_spd(e: E.Expr) -> bool:
    """Structural: declared spd(n), I, and sums and positive multiples of those."""
    if isinstance(e, E.Symbol):
        return e.kind == "spd"
    if isinstance(e, E.Identity):
        return True
    if isinstance(e, E.Add):
        return all(is_spd(t) for t in e.terms)
    if isinstance(e, E.Mul) and len(e.factors) == 2 and isinstance(e.factors[0], E.Const):
        return e.factors[0].value > 0 and is_spd(e.factors[1])
    return False


# Functions whose every value is >= 0, and those whose values lie in [0, 1].
NONNEGATIVE_FNS = {Fn.EXP, Fn.SIGMOID, Fn.SOFTPLUS, Fn.RELU, Fn.ABS, Fn.SQRT, Fn.STEP, Fn.SOFTMAX}
UNIT_INTERVAL_FNS = {Fn.SIGMOID, Fn.STEP, Fn.SOFTMAX}


def is_nonnegative(e: E.Expr) -> bool:
    """Structural: true only where every entry is certainly >= 0 (for Xᵀ diag(v) X = ZᵀZ)."""
    if isinstance(e, E.Const):
        return e.value >= 0
    if isinstance(e, E.Symbol):
        return e.positive          # declared `positive ...`
    if isinstance(e, E.Broadcast):
        return is_nonnegative(e.value)
    if isinstance(e, E.Apply):
        return e.fn in NONNEGATIVE_FNS
    if isinstance(e, E.Power):
        even = isinstance(e.exponent, E.Const) and float(e.exponent.value) % 2 == 0
        return even or is_nonnegative(e.base)
    if isinstance(e, (E.Hadamard, E.Add)) or (isinstance(e, E.Mul) and e.is_scalar):
        return all(is_nonnegative(c) for c in e.children()) or _one_minus_unit(e)
    return False


def _one_minus_unit(e: E.Expr) -> bool:
    """1 - u with u in [0, 1]: 1 - sigmoid(z), 1 - tanh(z).^2."""
    if not (isinstance(e, E.Add) and len(e.terms) == 2):
        return False
    for one, minus in (e.terms, e.terms[::-1]):
        if (one == E.ONE or (isinstance(one, E.Broadcast) and one.value == E.ONE)) and isinstance(minus, E.Mul) \
                and len(minus.factors) == 2 and minus.factors[0] == E.MINUS_ONE:
            u = minus.factors[1]
            return (isinstance(u, E.Apply) and u.fn in UNIT_INTERVAL_FNS) or (
                isinstance(u, E.Power) and u.exponent == E.const(2) and isinstance(u.base, E.Apply)
                and u.base.fn in (Fn.TANH, Fn.SIGMOID))
    return False


# ------------------------------------------------------------ transpose

def _t_scalar(e, ctx):
    return e.arg if e.arg.is_scalar else None


def _t_push(e, ctx):
    a = e.arg
    if isinstance(a, E.Transpose):
        return a.arg
    if is_symmetric(a) and isinstance(a, (E.Symbol, E.Identity, E.Differential, E.Apply, E.MatPow)):
        return a
    if isinstance(a, (E.Zero, E.Broadcast)):
        return E.Zero(e.shape) if isinstance(a, E.Zero) else E.Broadcast(a.value, e.shape)
    if isinstance(a, E.Mul):
        return E.mul(*(transposed(f) for f in reversed(a.factors)))
    if isinstance(a, E.Add):
        return E.add(*(transposed(t) for t in a.terms))
    if isinstance(a, E.Hadamard):
        return E.hadamard(*(transposed(f) for f in a.factors))
    if isinstance(a, E.Apply) and a.fn.elementwise:
        return E.apply(a.fn, transposed(a.arg))
    if isinstance(a, E.Apply) and a.fn is Fn.INV and isinstance(a.arg, E.Transpose):   # inv(Xᵀ)ᵀ = inv(X)
        return E.apply(Fn.INV, a.arg.arg)
    if isinstance(a, E.Power):
        return E.power(transposed(a.base), a.exponent)
    if isinstance(a, E.Kron):
        return E.kron(transposed(a.left), transposed(a.right))
    if isinstance(a, E.MatPow):
        return E.matpow(transposed(a.base), a.k)
    return None


# ------------------------------------------------------------ products

def _m_zero(e, ctx):
    return E.zero(e.shape) if any(E.is_zero(f) for f in e.factors) else None


def _m_identity(e, ctx):
    kept = [f for f in e.factors if not isinstance(f, E.Identity)]
    if len(kept) == len(e.factors):
        return None
    if not any(not f.is_scalar for f in kept):      # only identities in the chain: keep one
        if len(e.factors) - len(kept) == 1:
            return None
        kept.append(E.Identity(e.shape))
    return E.mul(*kept)


def _m_scalars_first(e, ctx):
    """Scalars commute: coefficient, then scalar factors in order, then the chain;
    equal scalar bases combine (x * x^-1 = 1)."""
    consts = [f for f in e.factors if isinstance(f, E.Const)]
    scalars = [f for f in e.factors if f.is_scalar and not isinstance(f, E.Const)]
    chain = [f for f in e.factors if not f.is_scalar]
    combined = _combine_powers(*_powers_table(scalars))
    combined.sort(key=ctx.key)
    new = E.mul(*consts, *combined, *chain)
    return None if new == e else new


def _m_inner_product(e, ctx):
    """y'x = x'y: one order for inner products, so that like terms meet."""
    if not e.is_scalar or len(e.factors) != 2:
        return None
    u, v = e.factors
    if not (isinstance(u, E.Transpose) and u.arg.shape[1] == 1 and v.shape[1] == 1):
        return None
    if isinstance(v, E.Differential):
        return None                          # g'dx: the differential stays on the right
    if isinstance(u.arg, E.Differential) or ctx.key(v) < ctx.key(u.arg):
        return E.mul(E.transpose(v), u.arg)
    return None


def _m_chain(e, ctx):
    """Within the matrix chain: X X⁻¹ = I, X X = X², diag(v) x = v ⊙ x."""
    scalars = [f for f in e.factors if f.is_scalar]
    chain = [f for f in e.factors if not f.is_scalar]
    out: list[E.Expr] = []
    changed = False
    for f in chain:
        prev = out[-1] if out else None
        # Xᵃ Xᵇ = Xᵃ⁺ᵇ for integers a, b of either sign (X X⁻¹ = I, X (X⁻¹)³ X = X⁻¹):
        # where X⁻¹ appears X is invertible wherever the product is defined
        if prev is not None and not is_vector_shape(f) and not isinstance(f, E.Identity) \
                and signed_power(prev)[0] == signed_power(f)[0]:
            base = signed_power(f)[0]
            combined = from_signed_power(base, signed_power(prev)[1] + signed_power(f)[1])
            if combined is None:
                out.pop()
            else:
                out[-1] = combined
            changed = True
            continue
        # diag(a) diag(b) = diag(a ⊙ b): diagonal matrices multiply entry by entry
        if prev is not None and all(isinstance(x, E.Apply) and x.fn is Fn.DIAG for x in (prev, f)):
            out[-1] = E.apply(Fn.DIAG, E.hadamard(prev.arg, f.arg))
            changed = True
            continue
        if prev is not None and isinstance(prev, E.Apply) and prev.fn is Fn.DIAG and f.shape[1] == 1:
            out[-1] = E.hadamard(prev.arg, f)
            changed = True
            continue
        if prev is not None and isinstance(f, E.Apply) and f.fn is Fn.DIAG and prev.shape[0] == 1:
            out[-1] = transposed(E.hadamard(transposed(prev), f.arg))
            changed = True
            continue
        out.append(f)
    if not changed:
        return None
    if not out:
        n = chain[0].shape[0]
        out = [E.Identity((n, n))]
    return E.mul(*scalars, *out)


# ------------------------------------------------------------ sums

def _logistic(bases: dict, order: list) -> None:
    """exp(z) ⊙ (1 + exp(z))^-1 = sigmoid(z), in a table of base -> exponents."""
    for base in list(order):
        exps = bases.get(base)
        if exps != [E.MINUS_ONE] or not isinstance(base, E.Add) or len(base.terms) != 2:
            continue
        ones = [t for t in base.terms if E.is_const(t, 1) or (isinstance(t, E.Broadcast) and E.is_const(t.value, 1))]
        exps_ = [t for t in base.terms if isinstance(t, E.Apply) and t.fn is Fn.EXP]
        if len(ones) != 1 or len(exps_) != 1 or bases.get(exps_[0]) != [E.ONE]:
            continue
        sigmoid = E.apply(Fn.SIGMOID, exps_[0].arg)
        del bases[base], bases[exps_[0]]
        order.remove(base)
        if sigmoid in bases:          # sigmoid(z)^k already a factor: the exponents add up
            order.remove(exps_[0])
        else:
            order[order.index(exps_[0])] = sigmoid
        bases[sigmoid].append(E.ONE)


def _powers_table(factors) -> tuple[dict, list]:
    """base -> its exponents, and the bases in first-seen order."""
    powers: dict[E.Expr, list[E.Expr]] = defaultdict(list)
    order = []
    for f in factors:
        base, exp = (f.base, f.exponent) if isinstance(f, E.Power) else (f, E.ONE)
        if base not in powers:
            order.append(base)
        powers[base].append(exp)
    return powers, order


def _combine_powers(bases: dict, order: list) -> list:
    """x^a x^b = x^(a+b) for a base -> exponents table (exponents 0 drop out)."""
    _logistic(bases, order)
    sign_times_self(bases, order)
    out = []
    for base in order:
        exps = bases[base]
        if len(exps) == 1:
            out.append(E.power(base, exps[0]) if exps[0] != E.ONE else base)
        elif all(isinstance(x, E.Const) for x in exps):
            total = sum(x.value for x in exps)
            if total != 0:
                out.append(E.power(base, E.Const(total)) if total != 1 else base)
        else:
            out.append(E.power(base, E.add(*exps)))
    return out


def _a_zero(e, ctx):
    kept = [t for t in e.terms if not E.is_zero(t)]
    if len(kept) == len(e.terms):
        return None
    return E.add(*kept) if kept else E.zero(e.shape)


def _a_collect(e, ctx):
    """Like terms: 2A + 3A = 5A; scalars added to every entry become one."""
    coeffs: dict[E.Expr, Fraction | float] = {}
    broadcast = []
    for t in e.terms:
        if isinstance(t, E.Broadcast):
            broadcast.append(t.value)
            continue
        c, rest = split_coefficient(t)
        coeffs[rest] = coeffs.get(rest, 0) + c
    if len(coeffs) + min(len(broadcast), 1) == len(e.terms):
        return None
    terms = [_scaled(c, r) for r, c in coeffs.items() if c != 0]
    if broadcast:
        terms.append(E.broadcast(E.add(*broadcast), e.shape))
    return E.add(*terms) if terms else E.zero(e.shape)


def _chain_of(t: E.Expr) -> tuple[list[E.Expr], list[E.Expr]]:
    if isinstance(t, E.Mul):
        return [f for f in t.factors if f.is_scalar], [f for f in t.factors if not f.is_scalar]
    return ([], [t]) if not t.is_scalar else ([t], [])


def _factor(e: E.Add, at_end: bool):
    groups: dict[E.Expr, list[int]] = defaultdict(list)
    chains = [_chain_of(t) for t in e.terms]
    for i, (scalars, chain) in enumerate(chains):
        if chain and not isinstance(chain[-1 if at_end else 0], (E.Broadcast, E.Identity)):
            groups[chain[-1 if at_end else 0]].append(i)
    for common, members in groups.items():
        # a term that is only the common factor would leave an I behind: it stays outside
        # (A + A*B as it is; A - A*B*A - A*C*A = A - A*(B + C)*A)
        members = [i for i in members if len(chains[i][1]) > 1]
        if len(members) < 2:
            continue
        rest = []
        for i in members:
            scalars, chain = chains[i]
            remaining = chain[:-1] if at_end else chain[1:]
            rest.append(E.mul(*scalars, *remaining))
        # -A C - B C = -(A + B) C: a common sign stays outside
        sign = -1 if all(split_coefficient(r)[0] < 0 for r in rest) else 1
        inner = E.add(*(E.mul(E.Const(sign), r) for r in rest))
        factored = E.mul(E.Const(sign), inner, common) if at_end else E.mul(E.Const(sign), common, inner)
        others = [t for i, t in enumerate(e.terms) if i not in members]
        return E.add(factored, *others) if others else factored
    return None


def _a_factor(e, ctx):
    """A*x + B*x = (A + B)*x, then x'*A + x'*B = x'*(A + B)."""
    return _factor(e, at_end=True) or _factor(e, at_end=False)


def _a_common_scalar(e, ctx):
    """a/n − b/n = (a − b)/n: a scalar factor (not a number) that every term has comes out
    once, as mean() losses are written: X'*(sigmoid(X*w) - y)/n."""
    chains = [_chain_of(t) for t in e.terms]
    if any(isinstance(t, E.Broadcast) for t in e.terms) or not chains[0][0]:
        return None
    for s in chains[0][0]:
        if isinstance(s, E.Const) or not all(s in scalars for scalars, _ in chains[1:]):
            continue
        rest = []
        for scalars, chain in chains:
            others = list(scalars)
            others.remove(s)
            rest.append(E.mul(*others, *chain))
        return E.mul(s, E.add(*rest))
    return None


def _a_sort(e, ctx):
    def order(t):       # a broadcast -c·1 is a negative term too: I - 11ᵀ/D, x - mu
        c, _ = split_coefficient(t.value if isinstance(t, E.Broadcast) else t)
        return (c < 0, ctx.key(_scaled(-c, t) if c < 0 else t))
    terms = sorted(e.terms, key=order)
    return None if terms == list(e.terms) else E.add(*terms)


# ------------------------------------------------------------ Hadamard

def _is_divisor(f: E.Expr) -> bool:
    return isinstance(f, E.Power) and E.is_const(f.exponent, -1)


def _h_simplify(e, ctx):
    """Zeros, ones and scalars leave; equal bases combine (x .* x = x.^2); order."""
    if any(E.is_zero(f) for f in e.factors):
        return E.zero(e.shape)
    scale, plain = [], []
    for f in e.factors:
        if isinstance(f, E.Broadcast):
            scale.append(f.value)
            continue
        c, rest = split_coefficient(f)
        if c != 1:
            scale.append(E.Const(c))
        plain.append(rest if c != 1 else f)
    factors = _combine_powers(*_powers_table(plain))
    factors.sort(key=lambda f: (_is_divisor(f), ctx.key(f)))     # divisors last: x ⊘ y, not y⁻¹ ⊙ x
    body = E.hadamard(*factors) if factors else E.broadcast(E.ONE, e.shape)
    new = E.mul(*scale, body) if scale else body
    return None if new == e else new


# ------------------------------------------------------------ powers

def _p_trivial(e, ctx):
    if E.is_const(e.exponent, 1):
        return e.base
    if E.is_const(e.exponent, 0):
        return E.ones(e.shape)
    b = e.base
    if isinstance(b, E.Zero) and isinstance(e.exponent, E.Const) and e.exponent.value > 0:
        return b
    if isinstance(b, E.Power) and isinstance(b.exponent, E.Const) and isinstance(e.exponent, E.Const) \
            and isinstance(e.exponent.value, Fraction) and e.exponent.value.denominator == 1:
        return E.power(b.base, E.Const(b.exponent.value * e.exponent.value))
    if isinstance(b, E.Broadcast):
        return E.broadcast(E.power(b.value, e.exponent), e.shape)
    return None


# ------------------------------------------------------------ functions

def _fn_trace(e, ctx):
    a = e.arg
    if a.is_scalar:
        return a
    if isinstance(a, E.Transpose):
        return E.apply(Fn.TRACE, a.arg)
    if isinstance(a, E.Add):
        return E.add(*(E.apply(Fn.TRACE, t) for t in a.terms))
    if isinstance(a, E.Mul):
        c, rest = split_coefficient(a)
        if c != 1:
            return _scaled(c, E.apply(Fn.TRACE, rest))
        chain = [f for f in a.factors if not f.is_scalar]
        scalars = [f for f in a.factors if f.is_scalar]
        if scalars:
            return E.mul(*scalars, E.apply(Fn.TRACE, E.mul(*chain)))
        if chain and chain[0].shape[1] == 1:        # tr(x yᵀ B) = yᵀ B x
            return E.mul(*chain[1:], chain[0])
    return None


def _fn_of_scalar(e, ctx):
    """A 1x1 argument: det(s) = s, logdet(s) = log(s), inv(s) = 1/s; a vector(1) is 1x1:
    softmax(s) = 1, logsumexp(s) = s."""
    if not e.arg.is_scalar:
        return None
    return {Fn.DET: lambda s: s, Fn.LOGDET: lambda s: E.apply(Fn.LOG, s),
            Fn.INV: lambda s: E.power(s, E.MINUS_ONE), Fn.DIAGV: lambda s: s,
            Fn.SOFTMAX: lambda s: E.ONE, Fn.LOGSUMEXP: lambda s: s}[e.fn](e.arg)


def _elementwise_of_constant(e, ctx):
    """f(0) and f(c·1) for an elementwise f: a constant, evaluated once (exp(0*x) = 1)."""
    a = e.arg
    if isinstance(a, E.Const):                # a scalar: folded where the value is exact
        return _exact_of_constant(e.fn, a.value)
    value = 0.0 if isinstance(a, E.Zero) else a.value.value if (
        isinstance(a, E.Broadcast) and isinstance(a.value, E.Const)) else None
    if value is None:
        return None
    import numpy as np        # only when a constant is folded: `import matcalc` stays free of NumPy
    with np.errstate(all="ignore"):
        result = float(ELEMENTWISE[e.fn].evaluate(np.array(float(value))))
    if not np.isfinite(result):
        return None
    return E.broadcast(E.const(result), e.shape)


# Elementwise functions that map a rational constant to a rational one, exactly.
EXACT_OF_CONSTANT = {Fn.ABS: abs, Fn.SIGN: lambda v: (v > 0) - (v < 0), Fn.STEP: lambda v: int(v > 0),
                     Fn.RELU: lambda v: max(v, 0)}


def _exact_of_constant(fn, value) -> E.Expr | None:
    """f(c) for a scalar c, where it is exact: abs/sign/step/relu of any constant, and
    any f whose value is an integer (exp(0) = 1, log(1) = 0); exp(2) stays as written."""
    if fn in EXACT_OF_CONSTANT and not isinstance(value, float):
        return E.const(EXACT_OF_CONSTANT[fn](value))
    import numpy as np
    with np.errstate(all="ignore"):
        result = float(ELEMENTWISE[fn].evaluate(np.array(float(value))))
    return E.const(int(result)) if np.isfinite(result) and result.is_integer() and abs(result) < 2**53 else None


def _fn_log(e, ctx):
    """log(1 + exp(z)) = softplus(z): the same value, without overflow for large z."""
    a = e.arg
    if isinstance(a, E.Add) and len(a.terms) == 2:
        ones = [t for t in a.terms if E.is_const(t, 1) or (isinstance(t, E.Broadcast) and E.is_const(t.value, 1))]
        exps = [t for t in a.terms if isinstance(t, E.Apply) and t.fn is Fn.EXP]
        if len(ones) == 1 and len(exps) == 1:
            return E.apply(Fn.SOFTPLUS, exps[0].arg)
    return None


def _fn_inverse(e, ctx):
    a = e.arg
    if isinstance(a, E.Apply) and a.fn is Fn.INV:
        return a.arg
    if isinstance(a, E.Identity):
        return a
    return None


def _fn_diag(e, ctx):
    a = e.arg
    if e.fn is Fn.DIAGV and isinstance(a, E.Apply) and a.fn is Fn.DIAG:
        return a.arg
    if e.fn is Fn.DIAG and isinstance(a, E.Broadcast):          # diag(s 1) = s I
        return E.mul(a.value, E.Identity(e.shape))
    if e.fn is Fn.DIAGV and isinstance(a, E.Mul):               # diag(a bᵀ) = a ⊙ b
        chain = [f for f in a.factors if not f.is_scalar]
        if len(chain) == 2 and chain[0].shape[1] == 1 and chain[1].shape[0] == 1:
            return E.mul(*(f for f in a.factors if f.is_scalar), E.hadamard(chain[0], transposed(chain[1])))
    if e.fn is Fn.DIAGV and isinstance(a, E.Identity):
        return E.broadcast(E.ONE, e.shape)
    return None


def _fn_sum(e, ctx):
    if e.arg.is_scalar:
        return e.arg
    return None


def _fn_of_nonnegative(e, ctx):
    """|x| = x and sqrt(x.^2) = x where x >= 0 structurally (a `positive` input, exp(z), ...)."""
    x = e.arg
    if e.fn is Fn.SQRT:
        if not (isinstance(x, E.Power) and E.is_const(x.exponent, 2)):
            return None
        x = x.base
    return x if is_nonnegative(x) else None


def _fn_norm_of_scalar(e, ctx):
    """‖s‖₁ = ‖s‖₂ = |s|: with a constant s this folds (norm2(0)^2 = 0)."""
    return E.apply(Fn.ABS, e.arg) if e.arg.is_scalar else None


# ------------------------------------------------------------ misc

def _frobenius(e, ctx):
    a, b = e.left, e.right
    if E.is_zero(a) or E.is_zero(b):
        return E.zero(e.shape)
    if a.is_scalar:
        return E.mul(a, b)
    if a.shape[1] == 1:                       # vectors: a:b = aᵀb
        return E.mul(transposed(a), b)
    if a.shape[0] == 1:
        return E.mul(a, transposed(b))
    return None


def _kron(e, ctx):
    """I ⊗ I = I; a 1x1 factor is a scalar: s ⊗ B = sB."""
    a, b = e.left, e.right
    if isinstance(a, E.Identity) and isinstance(b, E.Identity):
        return E.Identity(e.shape)
    if a.is_scalar:
        return E.mul(a, b)
    if b.is_scalar:
        return E.mul(b, a)
    return None


def _broadcast(e, ctx):
    return E.Zero(e.shape) if E.is_zero(e.value) else None


# f'(A) for L_f(A, I) = f'(A): the Fréchet derivative along the identity.
FRECHET_ALONG_I = {
    Fn.EXPM: lambda a: E.apply(Fn.EXPM, a),
    Fn.LOGM: lambda a: E.apply(Fn.INV, a),
    Fn.SQRTM: lambda a: E.mul(E.Const(Fraction(1, 2)), E.apply(Fn.INV, E.apply(Fn.SQRTM, a))),
}


def frechet_along_identity(e: E.FrechetAdj, ctx=None) -> E.Expr | None:
    """f_adj(Y, cI) = c L_f(Yᵀ, I) = c f'(Y)ᵀ (I commutes with everything); c any scalar."""
    g = e.g
    factors = g.factors if isinstance(g, E.Mul) else (g,)
    matrices = [f for f in factors if not f.is_scalar]
    if len(matrices) != 1 or not isinstance(matrices[0], E.Identity):
        return None
    return E.mul(*(f for f in factors if f.is_scalar), E.transpose(FRECHET_ALONG_I[e.fn](e.x)))


# One rule, several node types: the cost-based expansion of rules/polynomial.py.
CANCEL = Rule("cancel and collect", "b⁻¹ ⊙ b = 1, (1 − t) ⊙ y − t ⊙ (1 − y) = y − t")

RULES: dict[object, list[AlgebraRule]] = {
    E.Transpose: [AlgebraRule(Rule("transpose of a scalar", "sᵀ = s"), _t_scalar),
                  AlgebraRule(Rule("transpose pushed to the leaves", "(AB)ᵀ = BᵀAᵀ, (Aᵀ)ᵀ = A, Sᵀ = S"), _t_push)],
    E.Mul: [AlgebraRule(Rule("zero factor", "0 A = 0"), _m_zero),
            AlgebraRule(Rule("identity factor", "A I = A"), _m_identity),
            AlgebraRule(Rule("scalars commute", "A (s B) = s A B"), _m_scalars_first),
            AlgebraRule(Rule("products", "X X⁻¹ = I, Xᵃ Xᵇ = Xᵃ⁺ᵇ, diag(a) diag(b) = diag(a ⊙ b), diag(v) x = v ⊙ x"), _m_chain),
            AlgebraRule(Rule("inner products commute", "yᵀx = xᵀy"), _m_inner_product),
            AlgebraRule(Rule("Kronecker and vec products", "vec(B)ᵀ(C ⊗ A) = vec(AᵀBC)ᵀ, "
                             "(C ⊗ A)vec(B) = vec(ABCᵀ), (A ⊗ B)(C ⊗ D) = AC ⊗ BD", "520"), kronecker_products),
            AlgebraRule(Rule("inverse of a product", "(ABC)⁻¹ = C⁻¹B⁻¹A⁻¹ beside A or C (square factors)"),
                        product_inverse_beside_factor),
            AlgebraRule(Rule("inner product with the reciprocal", "uᵀ(u⁻¹) = sum(1)"), inner_product_of_reciprocals),
            AlgebraRule(Rule("a softmax sums to one", "softmax(z)ᵀ1 = 1, softmax(X, 2) 1 = 1"), softmax_sums_to_one),
            AlgebraRule(CANCEL, shorter_elementwise)],
    E.Add: [AlgebraRule(Rule("zero term", "A + 0 = A"), _a_zero),
            AlgebraRule(Rule("like terms", "aA + bA = (a+b)A"), _a_collect),
            AlgebraRule(Rule("sum of diagonals", "a diag(u) + b diag(v) = diag(a u + b v)"), sum_of_diagonals),
            AlgebraRule(CANCEL, shorter_elementwise),
            AlgebraRule(Rule("common factor", "AC + BC = (A+B)C"), _a_factor),
            AlgebraRule(Rule("common elementwise factor", "A⊙C + B⊙C = (A+B)⊙C"), common_hadamard_factor),
            AlgebraRule(Rule("common scalar factor", "sA + sB = s(A+B)"), _a_common_scalar),
            AlgebraRule(Rule("terms in order", "A + B = B + A"), _a_sort)],
    E.Hadamard: [AlgebraRule(Rule("Hadamard normal form", "A⊙B = B⊙A, A⊙1 = A, (sA)⊙B = s(A⊙B)"), _h_simplify),
                 AlgebraRule(CANCEL, shorter_elementwise)],
    E.Power: [AlgebraRule(Rule("powers", "A^1 = A, (A^p)^q = A^(pq), 0^p = 0 for p > 0"), _p_trivial),
              AlgebraRule(CANCEL, shorter_elementwise)],
    E.Frobenius: [AlgebraRule(Rule("Frobenius of vectors", "a:b = aᵀb"), _frobenius),
                  AlgebraRule(Rule("Frobenius of an inverse", "X⁻ᵀ : X = tr(I)"), frobenius_of_inverse)],
    **{key: [AlgebraRule(Rule("Kronecker adjoint", "kron_adj_left(A, P ⊗ Q) = (A : P) Q, "
                              "kron_adj_right(P ⊗ Q, B) = (Q : B) P"), kron_adj_rules)]
       for key in (E.KronAdjLeft, E.KronAdjRight)},
    E.Broadcast: [AlgebraRule(Rule("zero broadcast", "0·11ᵀ = 0"), _broadcast)],
    E.Kron: [AlgebraRule(Rule("Kronecker identities", "I ⊗ I = I, s ⊗ B = sB"), _kron),
             AlgebraRule(Rule("scalars leave a Kronecker product", "(aA) ⊗ (bB) = ab (A ⊗ B)"), kron_of_scaled)],
    E.Unvec: [AlgebraRule(Rule("unvec", "unvec(vec(M)) = M, unvec((A ⊗ B) v) = B unvec(v) Aᵀ"), unvec_rules)],
    Fn.VEC: [AlgebraRule(Rule("vec", "vec(unvec(v)) = v, vec(x) = x, vec(xᵀ) = x"), vec_rules)],
    Fn.TRACE: [AlgebraRule(Rule("trace", "tr(s) = s, tr(Aᵀ) = tr(A), tr(x yᵀ) = yᵀx"), _fn_trace)],
    Fn.INV: [AlgebraRule(Rule("inverse of a scalar", "inv(s) = 1/s"), _fn_of_scalar),
             AlgebraRule(Rule("inverse", "(X⁻¹)⁻¹ = X, I⁻¹ = I"), _fn_inverse),
             AlgebraRule(Rule("inverse of a power", "(Xᵏ)⁻¹ = (X⁻¹)ᵏ"), inverse_of_power),
             AlgebraRule(Rule("inverse of a Kronecker product", "(A ⊗ B)⁻¹ = A⁻¹ ⊗ B⁻¹"), inverse_of_kron)],
    Fn.DET: [AlgebraRule(Rule("determinant of a scalar", "det(s) = s"), _fn_of_scalar),
             AlgebraRule(Rule("determinant of a power", "det(Xᵏ) = det(X)ᵏ, det(X⁻¹) = 1/det(X), det(Xᵀ) = det(X)",
                              "18"), determinant_of_power)],
    Fn.LOG: [AlgebraRule(Rule("softplus", "log(1 + exp(z)) = softplus(z)"), _fn_log),
             AlgebraRule(Rule("log of a sigmoid", "log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z)"),
                         log_of_sigmoid),
             AlgebraRule(Rule("log-softmax", "log softmax(z) = z − logsumexp(z)"), log_of_softmax)],

    Fn.LOGDET: [AlgebraRule(Rule("log det of a scalar", "logdet(s) = log(s)"), _fn_of_scalar)],
    Fn.SOFTMAX: [AlgebraRule(Rule("softmax of one entry", "softmax(s) = 1"), _fn_of_scalar)],
    Fn.LOGSUMEXP: [AlgebraRule(Rule("logsumexp of one entry", "logsumexp(s) = s"), _fn_of_scalar)],
    Fn.DIAGV: [AlgebraRule(Rule("diag", "diag(diag(v)) = v, diag(a bᵀ) = a ⊙ b"), _fn_diag)],
    Fn.DIAG: [AlgebraRule(Rule("diag of a constant", "diag(s 1) = s I"), _fn_diag)],
    Fn.SUM: [AlgebraRule(Rule("sum of a scalar", "sum(s) = s"), _fn_sum),
             AlgebraRule(Rule("sum of a multiple", "sum(s A) = s sum(A)"), sum_of_scaled)],
    **{fn: [AlgebraRule(Rule("sum of a multiple", "sum(s A, k) = s sum(A, k)"), sum_of_scaled)]
       for fn in (Fn.SUM_COLS, Fn.SUM_ROWS)},
    Fn.NORM1: [AlgebraRule(Rule("norm of a scalar", "‖s‖ = |s|"), _fn_norm_of_scalar)],
    Fn.NORM2: [AlgebraRule(Rule("norm of a scalar", "‖s‖ = |s|"), _fn_norm_of_scalar)],
    E.FrechetAdj: [AlgebraRule(Rule("Fréchet derivative along I", "expm_adj(Y, I) = expm(Y)ᵀ, "
                                    "logm_adj(Y, I) = (Y⁻¹)ᵀ, sqrtm_adj(Y, I) = ½ (sqrtm(Y)⁻¹)ᵀ"),
                               frechet_along_identity)],
    Fn.ABS: [AlgebraRule(Rule("nonnegative argument", "|x| = x for x ≥ 0"), _fn_of_nonnegative)],
    Fn.SQRT: [AlgebraRule(Rule("nonnegative argument", "√(x²) = x for x ≥ 0"), _fn_of_nonnegative)],
}
for _fn in ELEMENTWISE:     # every elementwise function folds on constants first
    RULES.setdefault(_fn, []).insert(0, AlgebraRule(Rule("function of a constant", "f(c1) = f(c)1"),
                                                    _elementwise_of_constant))


def rules_for(e: E.Expr) -> list[AlgebraRule]:
    return RULES.get(e.fn if isinstance(e, E.Apply) else type(e), [])
