"""The one precedence table every printer uses (loosest binds lowest).

Layer L2: imports expr only.
"""
from __future__ import annotations

from fractions import Fraction

from .. import expr as E

FROBENIUS, ADD, MUL, NEG, POW, POSTFIX, ATOM = range(1, 8)


class Printer:
    """`_print_<Node>` dispatch and parentheses from the table; an unknown node
    raises rather than falling back to str()."""
    what = "a"                      # the printer's name, for that error

    def __call__(self, e: E.Expr) -> str:
        return self.print(e)

    def print(self, e: E.Expr) -> str:
        method = getattr(self, "_print_" + type(e).__name__, None)
        if method is None:
            raise TypeError(f"the {self.what} printer has no rule for {type(e).__name__}")
        return method(e)

    def level(self, e: E.Expr) -> int:
        return precedence(e)

    def wrap(self, e: E.Expr, level: int) -> str:
        """e printed, in parentheses if it binds more loosely than `level`."""
        s = self.print(e)
        return self.parenthesised(s) if self.level(e) < level else s

    def parenthesised(self, s: str) -> str:
        return f"({s})"


def coefficient(e: E.Expr) -> tuple[Fraction | float, tuple[E.Expr, ...]]:
    """Split a product into its numeric coefficient and the other factors."""
    if isinstance(e, E.Mul) and isinstance(e.factors[0], E.Const):
        return e.factors[0].value, e.factors[1:]
    if isinstance(e, E.Mul):
        return Fraction(1), e.factors
    if isinstance(e, E.Const):
        return e.value, ()
    return Fraction(1), (e,)


def precedence(e: E.Expr) -> int:
    if isinstance(e, E.Add):
        return ADD
    if isinstance(e, E.Frobenius):
        return FROBENIUS
    if isinstance(e, (E.Mul, E.Hadamard)):
        return MUL          # a leading minus too: `A .* -B*A` would read as (A .* -B)*A
    if isinstance(e, E.Const):
        v = e.value
        if v < 0:
            return NEG
        if isinstance(v, Fraction) and v.denominator != 1 and not is_decimal(v):
            return MUL
        return ATOM
    if isinstance(e, E.Broadcast):
        return ATOM if E.is_const(e.value, 1) else MUL
    if isinstance(e, E.Zero) and not e.is_scalar:
        return MUL          # printed 0*ones: `(0*ones).^2`, not `0*ones.^2`
    if isinstance(e, (E.Power, E.MatPow)):
        return POW
    if isinstance(e, (E.Transpose, E.Differential)):
        return POSTFIX
    return ATOM


def is_decimal(v: Fraction) -> bool:
    """True if v has a short exact decimal form (0.5, 0.125)."""
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1 and len(str(v.denominator)) <= 6


def format_number(v) -> str:
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        if is_decimal(v):
            s = f"{float(v):.6f}".rstrip("0")
            if Fraction(s) == v:
                return s
        return f"{v.numerator}/{v.denominator}"
    return repr(float(v))


def signed_terms(e: E.Add):
    """The terms of a sum as (sign, term): a negative coefficient becomes ' - '
    with the positive term; a broadcast scalar prints as the scalar itself."""
    for i, t in enumerate(e.terms):
        if isinstance(t, E.Broadcast):
            t = t.value
        c, rest = coefficient(t)
        if i and c < 0:
            yield "-", (E.mul(E.Const(-c), *rest) if rest else E.Const(-c))
        else:
            yield ("+" if i else ""), t


def print_sum(printer, e: E.Add, minus: str = "-") -> str:
    """A sum in any printer with a `wrap(expr, level)`: a - (b - c), and a
    broadcast sum kept whole (x + (alpha + beta)).  `minus` is the printer's
    spelling of the sign (U+2212 in pretty output)."""
    out = []
    for sign, t in signed_terms(e):
        sign = minus if sign == "-" else sign
        if sign == minus or isinstance(t, E.Add):     # binds tighter than the sum around it
            body = printer.wrap(t, MUL)
        else:
            body = printer.wrap(t, ADD)
        out.append(f" {sign or '+'} {body}" if out else body)
    return "".join(out)


def print_hadamard(printer, e: E.Hadamard, times: str, divide: str) -> str:
    """An elementwise product in any printer: `a ⊙ b ⊘ c`, the divisor being
    a factor to the power -1; later factors bracketed like a product's."""
    out = []
    for i, f in enumerate(e.factors):
        if i and isinstance(f, E.Power) and E.is_const(f.exponent, -1):
            out.append(f" {divide} " + printer.wrap(f.base, MUL + 1))
        else:
            out.append((f" {times} " if i else "") + printer.wrap(f, MUL + 1 if i else MUL))
    return "".join(out)


def has_superscript(e: E.Expr) -> bool:
    """True for a node printed with a superscript of its own (Xᵀ, X², X⁻¹):
    as the base of another superscript it needs parentheses, (X⁻¹)ᵀ not X⁻¹ᵀ."""
    return isinstance(e, (E.Transpose, E.Power, E.MatPow)) or (isinstance(e, E.Apply) and e.fn is E.Fn.INV)


def call_parts(e: E.Expr) -> tuple[str, tuple[E.Expr, ...]]:
    """The name and arguments of a node printed as a call in text and pretty
    output: solve(A, B), expm_adj(Y, G), expm_adj_jac(Y)."""
    if isinstance(e, E.Solve):
        return "solve", (e.a, e.b)
    if isinstance(e, E.FrechetAdj):
        return E.FRECHET_ADJ[e.fn], (e.x, e.g)
    return E.FRECHET_ADJ[e.fn] + "_jac", (e.x,)


def print_call(printer, e: E.Expr) -> str:
    name, args = call_parts(e)
    return f"{name}({', '.join(printer.print(a) for a in args)})"
