"""The precedence tables every printer uses (loosest binds lowest).

Layer L2: imports expr only.

Two notations, one table of roles.  `role(e)` says what a node is as an
operator (a sum, a juxtaposed product, an infix product, ...); each notation
ranks the roles:

* TEXT, the input language's grammar (docs/reference.md §1): `:` loosest, then
  `+ -`, then `* / .* ./`, then unary minus; `kron(A, B)` is a call.
* READER, printed mathematics (pretty and LaTeX), as Magnus–Neudecker, the
  Matrix Cookbook and Goodfellow et al. write it: `:` `⊙` `⊘` `⊗` bind like
  products, tighter than `+ −`; juxtaposition binds tighter than all of them;
  a leading minus belongs to the factor it starts (`−a ⊙ b` is (−a) ⊙ b).
  Where the grammar and a reader's habit differ, the printed form follows the
  reader: `(a₂ − y) : da₂`, `g : (W dh + dW h)`, `(A ⊙ B) C`.  Different infix
  products never meet unbracketed (`(A ⊙ B) : C`), so no line reads two ways.

A new node is an atom unless ROLES (or VALUE_ROLES) says otherwise.
"""
from __future__ import annotations

from fractions import Fraction

from .. import expr as E

# The text levels (the grammar's), loosest first.
FROBENIUS, ADD, MUL, NEG, POW, POSTFIX, ATOM = range(1, 8)
# The reader's levels; POW, POSTFIX and ATOM are the same in both.
SUM, INFIX, SIGNED, JUXTAPOSED = range(1, 5)

# role -> level, per notation
TEXT = {"sum": ADD, "frobenius": FROBENIUS, "product": MUL, "signed product": MUL,
        "infix product": MUL, "kron": ATOM, "negative number": NEG, "fraction": MUL, "decimal": ATOM,
        "zero array": MUL,          # printed 0*ones: `(0*ones).^2`, not `0*ones.^2`
        "power": POW, "postfix": POSTFIX, "atom": ATOM}
READER = {"sum": SUM, "frobenius": INFIX, "product": JUXTAPOSED, "signed product": SIGNED,
          "infix product": INFIX, "kron": INFIX, "negative number": SIGNED, "fraction": JUXTAPOSED,
          "decimal": JUXTAPOSED,      # ½, 3/16, \\frac{3}{16}: not a plain atom
          "zero array": ATOM,       # 0, its shape known from the line it is on
          "power": POW, "postfix": POSTFIX, "atom": ATOM}

ROLES: dict[type, str] = {
    E.Add: "sum", E.Frobenius: "frobenius", E.Hadamard: "infix product", E.Kron: "kron",
    E.Power: "power", E.MatPow: "power", E.Transpose: "postfix", E.Differential: "postfix",
}


def _signed(e: E.Expr) -> bool:
    return coefficient(e)[0] < 0


def _const_role(e: E.Const) -> str:
    v = e.value
    if v < 0:
        return "negative number"
    if isinstance(v, Fraction) and v.denominator != 1:
        return "decimal" if is_decimal(v) else "fraction"     # 0.5 in text, ½ in print
    return "atom"


# Roles that depend on the node's value, not only its type.
VALUE_ROLES = {
    # a leading minus too: `A .* -B*A` would read as (A .* -B)*A
    E.Mul: lambda e: "signed product" if _signed(e) else "product",
    E.Const: _const_role,
    E.Broadcast: lambda e: ("atom" if E.is_const(e.value, 1) else
                            "signed product" if _signed(e.value) else "product"),
    E.Zero: lambda e: "atom" if e.is_scalar else "zero array",
}


def role(e: E.Expr) -> str:
    by_value = VALUE_ROLES.get(type(e))
    return by_value(e) if by_value else ROLES.get(type(e), "atom")


def precedence(e: E.Expr) -> int:
    """The text level of e (the grammar's)."""
    return TEXT[role(e)]


class Printer:
    """`_print_<Node>` dispatch and parentheses from a table (TEXT unless the
    printer says otherwise); an unknown node raises rather than falling back to str()."""
    what = "a"                      # the printer's name, for that error
    levels = TEXT

    def __call__(self, e: E.Expr) -> str:
        return self.print(e)

    def print(self, e: E.Expr) -> str:
        method = getattr(self, "_print_" + type(e).__name__, None)
        if method is None:
            raise TypeError(f"the {self.what} printer has no rule for {type(e).__name__}")
        return method(e)

    def level(self, e: E.Expr) -> int:
        return self.levels[role(e)]

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
    if isinstance(v, float) and abs(v) == E.PI:
        return "pi" if v > 0 else "-pi"
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
    with the positive term; a broadcast scalar prints as the scalar itself, except
    beside I, where `I - 1/D` would read as a multiple of I (it is I - 11ᵀ/D)."""
    beside_identity = any(isinstance(t, E.Identity) or (isinstance(t, E.Mul) and any(
        isinstance(f, E.Identity) for f in t.factors)) for t in e.terms)
    for i, t in enumerate(e.terms):
        if isinstance(t, E.Broadcast) and not beside_identity:
            t = t.value
        elif isinstance(t, E.Broadcast) and i and coefficient(t.value)[0] < 0:
            yield "-", E.broadcast(E.neg(t.value), t.shape)
            continue
        c, rest = coefficient(t)
        if i and c < 0:
            yield "-", (E.mul(E.Const(-c), *rest) if rest else E.Const(-c))
        else:
            yield ("+" if i else ""), t


def print_sum(printer, e: E.Add, minus: str = "-", term: int = ADD, after_minus: int = MUL,
              one_sign: bool = False) -> str:
    """A sum in any printer with a `wrap(expr, level)`: a - (b - c), and a
    broadcast sum kept whole (x + (alpha + beta)).  `minus` is the printer's
    spelling of the sign (U+2212 in pretty output); a term binds at least at
    `term`, after a minus (and a nested sum anywhere) at `after_minus`; with
    `one_sign`, a term after a sign that starts with one is bracketed."""
    out = []
    for sign, t in signed_terms(e):
        sign = minus if sign == "-" else sign
        if sign == minus or isinstance(t, E.Add):     # binds tighter than the sum around it
            body = printer.wrap(t, after_minus)
        else:
            body = printer.wrap(t, term)
        if out and one_sign and body.startswith(minus):
            body = printer.parenthesised(body)
        out.append(f" {sign or '+'} {body}" if out else body)
    return "".join(out)


def print_hadamard(printer, e: E.Hadamard, times: str, divide: str, first: int = MUL,
                   rest: int = MUL + 1) -> str:
    """An elementwise product in any printer: `a ⊙ b ⊘ c`, the divisor being
    a factor to the power -1; the first factor binds at least at `first`, the
    others (and divisors) at `rest`."""
    out = []
    for i, f in enumerate(e.factors):
        if i and isinstance(f, E.Power) and E.is_const(f.exponent, -1):
            out.append(f" {divide} " + printer.wrap(f.base, rest))
        else:
            out.append((f" {times} " if i else "") + printer.wrap(f, rest if i else first))
    return "".join(out)


class MathPrinter(Printer):
    """What pretty and LaTeX share: the READER table and every bracket decision
    made from it, so that the two notations bracket alike by construction; a
    subclass supplies only spellings (the symbols below, numbers, names)."""
    levels = READER
    MINUS, TIMES, DIVIDE, KRON, COLON = "-", "⊙", "⊘", "⊗", ":"

    def _print_Add(self, e):
        # every term binds at least like an infix product; one after a sign
        # never starts with one (`a + (−b ⊙ c)`, not `a + −b ⊙ c`)
        return print_sum(self, e, self.MINUS, INFIX, INFIX, one_sign=True)

    def _print_Hadamard(self, e):
        return print_hadamard(self, e, self.TIMES, self.DIVIDE, SIGNED, JUXTAPOSED)

    def _print_Kron(self, e):
        return f"{self.wrap(e.left, SIGNED)} {self.KRON} {self.wrap(e.right, JUXTAPOSED)}"

    def _print_Frobenius(self, e):
        return f"{self.wrap(e.left, SIGNED)} {self.COLON} {self.wrap(e.right, JUXTAPOSED)}"

    def factors(self, factors, signed: bool) -> list[str]:
        """A juxtaposed product's factors after its coefficient: each binds
        tighter than any infix product (`(A ⊙ B) C`); a scalar product inside
        it is bracketed (`(aᵀ x) a`), and so is every factor but a first."""
        parts = []
        for f in factors:
            if isinstance(f, E.Mul):
                parts.append(self.parenthesised(self.print(f)))
            else:
                parts.append(self.wrap(f, JUXTAPOSED + 1 if parts or signed else JUXTAPOSED))
        return parts

    def exponent(self, p: E.Expr) -> str:
        """An exponent written after ^ on the line: bracketed unless atomic."""
        return self.wrap(p, ATOM)

    def base(self, e: E.Expr) -> str:
        """e as the base of a superscript: (X⁻¹)ᵀ, not X⁻¹ᵀ."""
        if has_superscript(e):
            return self.parenthesised(self.print(e))
        return self.wrap(e, POSTFIX + 1)


def orientation(shape) -> str:
    """How an all-ones array of this shape is written: 𝟙, 𝟙ᵀ or 𝟙𝟙ᵀ."""
    return "column" if shape[1] == 1 else "row" if shape[0] == 1 else "matrix"


def has_superscript(e: E.Expr) -> bool:
    """True for a node printed with a superscript of its own (Xᵀ, X², X⁻¹):
    as the base of another superscript it needs parentheses, (X⁻¹)ᵀ not X⁻¹ᵀ."""
    return isinstance(e, (E.Transpose, E.Power, E.MatPow)) or (isinstance(e, E.Apply) and e.fn in (E.Fn.INV, E.Fn.PINV))


def call_parts(e: E.Expr) -> tuple[str, tuple[E.Expr, ...]]:
    """The name and arguments of a node printed as a call in text and pretty
    output: solve(A, B), expm_adj(Y, G), expm_adj_jac(Y), kron_adj_left(A, G)."""
    if isinstance(e, E.Solve):
        return "solve", (e.a, e.b)
    if isinstance(e, E.FrechetAdj):
        return E.FRECHET_ADJ[e.fn], (e.x, e.g)
    if isinstance(e, E.KronAdjLeft):
        return "kron_adj_left", (e.a, e.g)
    if isinstance(e, E.KronAdjRight):
        return "kron_adj_right", (e.g, e.b)
    return E.FRECHET_ADJ[e.fn] + "_jac", (e.x,)


def print_call(printer, e: E.Expr) -> str:
    name, args = call_parts(e)
    return f"{name}({', '.join(printer.print(a) for a in args)})"


def differential_name(d) -> str:
    """What a derivation's differential is called: dL for a program whose last definition
    is L, else df (the printers spell the d their own way)."""
    out = d.program.output
    return out.name if isinstance(out, E.Symbol) and d.program.definitions else "f"
