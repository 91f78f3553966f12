"""Text in the input language: what it prints parses back to the same tree.

Layer L2: imports expr and the precedence table.  `_print_<Node>` methods;
an unknown node raises.
"""
from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from .precedence import (differential_name, FROBENIUS, MUL, NEG, POSTFIX, Printer, coefficient, format_number,
                         print_call, print_hadamard, print_sum)


def _orientation(shape) -> str:
    return "column" if shape[1] == 1 else "row" if shape[0] == 1 else "matrix"


def _nameable(d) -> bool:
    """A dimension ones(...) and I(...) can take: a name or a positive integer, not m*n."""
    return isinstance(d, int) or str(d).isidentifier()


class TextPrinter(Printer):
    what = "text"

    def __init__(self, names: dict[str, str] | None = None):
        self.names = names or {}

    def _ones(self, shape) -> str:
        """The all-ones array with its size, `ones(n)`, `ones(n)'`, `ones(m, n)`: pasted
        back alone (1 + sum(ones(n))) it is the same array.  A size that is a product
        (m*n) has no argument form: then `ones`, `ones'`, `ones*ones'`."""
        orientation = _orientation(shape)
        if orientation == "matrix" and all(_nameable(d) for d in shape):
            return f"ones({shape[0]}, {shape[1]})"
        d = shape[0] if orientation == "column" else shape[1]
        if orientation != "matrix" and _nameable(d):
            return f"ones({d})" + ("'" if orientation == "row" else "")
        return {"column": "ones", "row": "ones'", "matrix": "ones*ones'"}[orientation]

    def _print_Symbol(self, e):
        return self.names.get(e.name, e.name)

    def _print_Const(self, e):
        return format_number(e.value)

    def _print_Size(self, e):
        return str(e.dim)

    def _print_Identity(self, e):
        return f"I({e.shape[0]})" if _nameable(e.shape[0]) else "I"

    def _print_Zero(self, e):
        return "0*" + self._ones(e.shape)

    def _print_Commutation(self, e):
        return f"commutation({e.m}, {e.n})"

    def _print_Broadcast(self, e):
        ones = self._ones(e.shape)
        if E.is_const(e.value, 1):
            return ones
        if isinstance(e.value, E.Mul) or _divisor(e.value) is not None:   # ones(n)/sqrt(d)
            return self._product(*coefficient(e.value), trailing=(ones,))
        return f"{self.wrap(e.value, MUL)}*{ones}"

    def _print_Differential(self, e):
        if isinstance(e.target, E.Symbol):
            return "d" + self.print(e.target)
        return f"d({self.print(e.target)})"

    def _print_Add(self, e):
        return print_sum(self, e)

    def _print_Mul(self, e):
        return self._product(*coefficient(e))

    def _product(self, c, factors, trailing: tuple[str, ...] = ()) -> str:
        """c times the factors (and the already printed `trailing` ones); a scalar's
        reciprocal is a divisor, as written: 2*X'*r/n, not 2*n^-1*X'*r."""
        sign = ""
        if c < 0:
            sign, c = "-", -c
        num, den = (c.numerator, c.denominator) if isinstance(c, Fraction) else (c, 1)
        # only the leading reciprocals: a/n parses with its divisor first, so it prints back
        lead = next((i for i, f in enumerate(factors) if _divisor(f) is None), len(factors))
        divisors = [_divisor(f) for f in factors[:lead]]
        if lead == len(factors) and not trailing:
            divisors = []                     # n^-1 alone stays a power
        else:
            factors = factors[lead:]
        parts = []
        if num != 1 or not (factors or trailing):
            parts.append(format_number(num if den != 1 else c))
        for f in factors:
            first = not parts and not sign
            if isinstance(f, E.Mul):
                parts.append(f"({self.print(f)})")
            elif first:
                parts.append(self.wrap(f, MUL))
            else:
                parts.append(self.wrap(f, MUL + 1))
        s = sign + "*".join(parts + list(trailing))
        below = ([str(den)] if den != 1 else []) + [self.wrap(d, MUL + 1) for d in divisors]
        if not below:
            return s
        return s + "/" + (below[0] if len(below) == 1 else "(" + "*".join(below) + ")")

    def _print_Hadamard(self, e):
        return print_hadamard(self, e, ".*", "./")

    def _print_Kron(self, e):
        return f"kron({self.print(e.left)}, {self.print(e.right)})"

    def _print_Frobenius(self, e):
        return f"{self.wrap(e.left, FROBENIUS)} : {self.wrap(e.right, FROBENIUS + 1)}"

    def _print_Transpose(self, e):
        return self.wrap(e.arg, POSTFIX) + "'"

    def _print_Power(self, e):
        op = "^" if e.base.is_scalar else ".^"
        return f"{self.wrap(e.base, POSTFIX)}{op}{self.wrap(e.exponent, NEG)}"

    def _print_MatPow(self, e):
        return f"{self.wrap(e.base, POSTFIX)}^{e.k}"

    def _print_Apply(self, e):
        if e.fn in E.AXIS:                       # sum(X, 1), softmax(X, 2)
            return f"{e.fn.text}({self.print(e.arg)}, {E.AXIS[e.fn]})"
        return f"{e.fn.text}({self.print(e.arg)})"

    def _print_Solve(self, e):            # and expm_adj(Y, G), expm_adj_jac(Y)
        return print_call(self, e)

    _print_FrechetAdj = _print_FrechetJac = _print_KronAdjLeft = _print_KronAdjRight = _print_Solve

    def _print_Unvec(self, e):
        return f"unvec({self.print(e.arg)}, {e.shape[0]}, {e.shape[1]})"

    def _print_Call(self, e):
        return f"{e.name}({self.print(e.arg)})"

    def _print_GradCall(self, e):
        return f"grad_{e.name}({self.print(e.arg)})"


to_text = TextPrinter()
E._STR_HOOK[0] = to_text


def derivation_text(d) -> str:
    """A derivation's results as a program in the input language.

    One variable and nothing named: the bare expression.  Otherwise the
    shared adjoints `g_a = ...` first, then `grad_X = ...` per variable.
    """
    if d.command == "differential" and not d.named:
        return to_text(d.total)
    if len(d.results) == 1 and not d.named:
        return to_text(d.result)
    lines = [f"{g.name} = {to_text(body)}" for g, body in d.named]
    if d.command == "differential":
        return "\n".join(lines + [f"d{differential_name(d)} = {to_text(d.total)}"])
    lines += [f"{d.command}_{name} = {to_text(g)}" for name, g in d.results.items()]
    return "\n".join(lines)


def _divisor(f: E.Expr) -> E.Expr | None:
    """n for n^-1, n^2 for n^-2, of a scalar n that is not a number (1/2 is a coefficient)."""
    # (a*b)^-1 of scalars a, b stays a power: a/(a*b) reads back as a^-1*b^-1, another tree
    scalar_product = isinstance(f, E.Power) and isinstance(f.base, E.Mul) and all(g.is_scalar for g in f.base.factors)
    if scalar_product or not (isinstance(f, E.Power) and f.base.is_scalar and not isinstance(f.base, E.Const)
            and isinstance(f.exponent, E.Const) and isinstance(f.exponent.value, Fraction)
            and f.exponent.value < 0 and f.exponent.value.denominator == 1):
        return None
    k = -f.exponent.value
    return f.base if k == 1 else E.power(f.base, E.Const(k))
