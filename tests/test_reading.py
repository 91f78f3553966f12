"""Pretty and LaTeX read one way: the way a mathematician reads them (issues 13 and 18).

A small reader, kept here and not in matcalc, parses printed mathematics by
the conventions of the books (Magnus–Neudecker, the Matrix Cookbook, Goodfellow
et al.): `+ −` loosest; the infix products `:` `⊙` `⊘` `⊗` (`\\odot` `\\oslash`
`\\otimes`) next, and two different ones never meet unbracketed (`A ⊙ B : C`
reads two ways, so the reader refuses it; `⊙ ⊘` chain like × ÷); a leading
minus belongs to the factor it starts (`−a ⊙ b` is (−a) ⊙ b); juxtaposition
binds tighter than every infix product (`a ⊙ W h` is a ⊙ (W h)); superscripts
ᵀ ⁻¹ ² ∘² ⁻ᵀ (`^{T}`, `^{-1}`, `^{\\circ 2}`) tightest; function names,
‖·‖, |·|, √, Σ, 𝟙, \\left( \\right), \\frac, \\operatorname.

Every line a derivation prints — each `--steps` line, the definitions its
explanations quote (`where a₂ = W₂ h₁ + b₂`) and each result — of every
Cookbook row and every example program, in both notations, is read back and
compared with the tree it was printed from (the tree the text form parses back
to, tests/test_roundtrip.py), modulo the associativity of + and of products
and where a numeric factor stands in a product (values equal either way).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc import expr as E
from matcalc.expr import Fn
from matcalc.printing.latex import NAMED, latex_name, to_latex
from matcalc.printing.pretty import FROBENIUS_NORM, FUNCTIONS, pretty_name, to_pretty
from matcalc.printing.steps import _explainer, _latex_why, _lines, steps_latex, steps_pretty
from tests.test_cookbook import ROWS, XFAIL
from tests.test_roundtrip import DECLS, _expr
from tests.test_steps import LATEX_CASES


class Unreadable(Exception):
    """The printed form does not read one way (or not at all)."""


# ------------------------------------------------------------ normal form
# Trees are tuples: ("num", v), ("atom", s), ("sum", terms), ("scale", c, t),
# ("mul" | "had" | "kron", factors), ("frob", a, b), ("T", a), ("pow", a, p),
# ("fn", spelling, arg).  The builders flatten associative operations and
# move numeric factors to the front, as the comparison is modulo both.

def num(v):
    return ("num", float(v))


def scale(c, t):
    if t[0] == "scale":
        c, t = c * t[1], t[2]
    if t[0] == "num":
        return num(c * t[1])
    return t if c == 1 else ("scale", float(c), t)


def _split(t):
    return (t[1], t[2]) if t[0] == "scale" else (1.0, t)


def product(kind, items):
    """An associative product: nested ones of the same kind flattened, numbers out front."""
    c, out = 1.0, []
    for item in items:
        k, item = _split(item)
        c *= k
        if item[0] == "num":
            c *= item[1]
        elif item[0] == kind:
            out.extend(item[1])
        else:
            out.append(item)
    if not out:
        return num(c)
    return scale(c, out[0] if len(out) == 1 else (kind, tuple(out)))


def frob(a, b):
    (ca, a), (cb, b) = _split(a), _split(b)
    return scale(ca * cb, ("frob", a, b))


def total(terms):
    out = []
    for t in terms:
        out.extend(t[1] if t[0] == "sum" else [t])
    return out[0] if len(out) == 1 else ("sum", tuple(out))


def same(a, b) -> bool:
    """Equal trees, numbers to LaTeX's 6 significant digits."""
    if a[0] != b[0] or len(a) != len(b):
        return False
    if a[0] == "num":
        return math.isclose(a[1], b[1], rel_tol=1e-5, abs_tol=1e-12)
    if a[0] == "scale":
        return math.isclose(a[1], b[1], rel_tol=1e-5) and same(a[2], b[2])
    for x, y in zip(a[1:], b[1:]):
        if isinstance(x, tuple) and x and isinstance(x[0], tuple):      # a list of children
            if len(x) != len(y) or not all(same(p, q) for p, q in zip(x, y)):
                return False
        elif isinstance(x, tuple):
            if not same(x, y):
                return False
        elif x != y:
            return False
    return True


# ------------------------------------------------ the tree a line was printed from

class Spelling:
    """How a notation spells the leaves: names, functions, 𝟙, d, ∇, K."""

    def __init__(self, notation):
        self.notation = notation
        pretty = notation == "pretty"
        self.name = pretty_name if pretty else latex_name
        self.d = "d" if pretty else r"\mathrm{d}"
        self.one = "𝟙" if pretty else r"\mathbb{1}"
        # a function is spelled by its printed form with the argument left out: tr(), ‖‖₂, \sqrt{}
        self.fn = {fn: t.format(x="") for fn, t in (FUNCTIONS if pretty else NAMED).items()}
        self.frobenius_norm = FROBENIUS_NORM.format(x="") if pretty else self.fn[Fn.NORM2]
        self.commutation = (lambda m, n: f"K({m},{n})") if pretty else (lambda m, n: f"K_{{{m},{n}}}")


def tree(e: E.Expr, sp: Spelling):
    """The normal form of the tree e (what the text form parses back to)."""
    t = lambda x: tree(x, sp)
    if isinstance(e, E.Add):
        # a broadcast scalar in a sum prints as the bare scalar, except beside I, where it
        # prints as the ones matrix it is (I + 1 would read as a multiple of I)
        beside_identity = any(isinstance(x, E.Identity) or (isinstance(x, E.Mul) and any(
            isinstance(f, E.Identity) for f in x.factors)) for x in e.terms)
        return total([t(x.value if isinstance(x, E.Broadcast) and not beside_identity else x)
                      for x in e.terms])
    if isinstance(e, E.Mul):
        return product("mul", [t(f) for f in e.factors])
    if isinstance(e, E.Hadamard):
        return product("had", [t(f) for f in e.factors])
    if isinstance(e, E.Kron):
        return product("kron", [t(e.left), t(e.right)])
    if isinstance(e, E.Frobenius):
        return frob(t(e.left), t(e.right))
    if isinstance(e, E.Transpose):
        return ("T", t(e.arg))
    if isinstance(e, E.Power):
        if sp.notation == "pretty" and E.is_const(e.exponent, Fraction(1, 2)):
            return ("fn", sp.fn[Fn.SQRT], t(e.base))
        return ("pow", t(e.base), t(e.exponent))
    if isinstance(e, E.MatPow):
        return ("pow", t(e.base), num(e.k))
    if isinstance(e, E.Apply):
        if e.fn is Fn.INV:
            return ("pow", t(e.arg), num(-1))
        if e.fn is Fn.NORM2 and not (e.arg.shape[0] == 1 or e.arg.shape[1] == 1):
            return ("fn", sp.frobenius_norm, t(e.arg))
        return ("fn", sp.fn[e.fn], t(e.arg))
    if isinstance(e, E.Symbol):
        return ("atom", sp.name(e.name))
    if isinstance(e, E.Differential):
        if isinstance(e.target, E.Symbol):
            return ("atom", sp.d + sp.name(e.target.name))
        return ("fn", sp.d + ("()" if sp.notation == "pretty" else r"\left(\right)"), t(e.target))
    if isinstance(e, E.Const):
        return num(e.value)
    if isinstance(e, E.Zero):
        return num(0)
    if isinstance(e, E.Size):                 # a dimension used as a number (mean's count)
        return ("atom", sp.name(str(e.dim)))
    if isinstance(e, E.Identity):
        return ("atom", "I")
    if isinstance(e, E.Commutation):
        return ("atom", sp.commutation(e.m, e.n))
    if isinstance(e, E.Broadcast):
        one = ("atom", sp.one)
        ones = (one if e.shape[1] == 1 else ("T", one) if e.shape[0] == 1
                else ("mul", (one, ("T", one))))
        return ones if E.is_const(e.value, 1) else product("mul", [t(e.value), ones])
    return called(e, sp)


def called(e: E.Expr, sp: Spelling):
    """A node this test has no entry for, printed as a call `head(a, b)`: its head is
    what the printer writes around placeholder arguments.  Anything else needs an entry."""
    kids = e.children()
    holders = [E.Symbol(f"Q{chr(97 + i)}", k.shape) for i, k in enumerate(kids)]
    printer = to_pretty if sp.notation == "pretty" else to_latex
    shown = printer(e.with_children(tuple(holders)))
    open_, close = ("(", ")") if sp.notation == "pretty" else (r"\left(", r"\right)")
    args = ", ".join(printer(h) for h in holders)
    if not kids or not shown.endswith(open_ + args + close):
        raise AssertionError(f"the reading test has no normal form for {type(e).__name__} ({shown}): add one")
    head = shown[: -len(open_ + args + close)] + open_ + close
    trees = tuple(tree(k, sp) for k in kids)
    return ("fn", head, trees[0] if len(trees) == 1 else trees)


# ------------------------------------------------------------- tokenizers

SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
VULGAR = {"½": Fraction(1, 2), "⅓": Fraction(1, 3), "⅔": Fraction(2, 3), "¼": Fraction(1, 4),
          "¾": Fraction(3, 4), "⅕": Fraction(1, 5), "⅖": Fraction(2, 5), "⅗": Fraction(3, 5),
          "⅘": Fraction(4, 5), "⅙": Fraction(1, 6), "⅚": Fraction(5, 6), "⅐": Fraction(1, 7),
          "⅛": Fraction(1, 8), "⅜": Fraction(3, 8), "⅝": Fraction(5, 8), "⅞": Fraction(7, 8),
          "⅑": Fraction(1, 9), "⅒": Fraction(1, 10)}
LETTER = "A-Za-zα-ωΑ-Ω"
PRETTY_TOKENS = re.compile("|".join([
    r"(?P<space>\s+)",
    r"(?P<num>[0-9]+(?:\.[0-9]+)?(?:×10[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)?(?:/[0-9]+)?|[" + "".join(VULGAR) + "])",
    r"(?P<atom>K\([^(),]+,[^(),]+\)|𝟙)",
    r"(?P<head>log det(?=\()|vec⁻¹(?=\()|√(?=\()|∇[" + LETTER + r"][\w₀-₉]*(?=\())",
    r"(?P<name>[" + LETTER + r"][" + LETTER + r"0-9_₀-₉]*)",
    r"(?P<sup>∘?(?:⁻ᵀ|ᵀ|[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))",
    r"(?P<hat>∘?\^)",
    r"(?P<norm>‖(?:[₀-₉]+|_F|∗)?)",
    r"(?P<op>[-+−:⊙⊘⊗()|,])",
]))


def pretty_tokens(s: str) -> list[tuple[str, str, bool]]:
    """(kind, text, spaced before) triples."""
    out, i, spaced = [], 0, True
    while i < len(s):
        m = PRETTY_TOKENS.match(s, i)
        if not m:
            raise Unreadable(f"cannot read {s[i:]!r} in {s!r}")
        kind = m.lastgroup
        if kind == "space":
            spaced = True
        else:
            text = m.group()
            if kind == "name" and s.startswith("(", m.end()):
                kind = "head"
            elif kind == "op" and text in "-−":
                text = "−"
            out.append((kind, text, spaced))
            spaced = False
        i = m.end()
    return out


def _braced(s: str, i: int) -> int:
    """The index after the group that opens with the brace at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return j + 1
    raise Unreadable(f"unbalanced braces in {s!r}")


def _latex_name(s: str, i: int) -> int:
    """The end of a name starting at i: a letter, \\greek or \\mathrm{..}, and a _{..} subscript."""
    m = re.compile(r"\\mathrm\{[^}]*\}|\\[A-Za-z]+|[A-Za-z]").match(s, i)
    j = m.end()
    if s.startswith("_{", j):
        j = _braced(s, j + 1)
    return j


LATEX_HEADS = re.compile(r"\\operatorname\{vec\}\^\{-1\}_\{[^}]*\}|\\operatorname\{[^}]*\}(?:_\{[12]\})?|\\log\\det|\\det|\\exp|\\log|\\sin|\\cos|\\tanh|\\tan|\\sigma")


def latex_tokens(s: str) -> list[tuple[str, str, bool]]:
    out, i, spaced = [], 0, True
    while i < len(s):
        c = s[i]
        kind = text = None
        if c.isspace():
            spaced, i = True, i + 1
            continue
        for word, k in ((r"\left(", "op"), (r"\right)", "op"), (r"\left\|", "norm"), (r"\right\|", "norm"),
                        (r"\left|", "op"), (r"\right|", "op"), (r"\odot", "op"), (r"\oslash", "op"),
                        (r"\otimes", "op"), (r"\mathbb{1}", "atom")):
            if s.startswith(word, i) and not (word[-1].isalpha() and s[i + len(word):i + len(word) + 1].isalpha()):
                kind, text = k, word
                break
        if kind is None and s.startswith(r"\frac{", i):
            j = _braced(s, i + 5)
            k = _braced(s, j)
            kind, text = "num", s[i:k]
        elif kind is None and s.startswith(r"\sqrt{", i):
            kind, text = "sqrt", r"\sqrt{"
        elif kind is None and s.startswith(r"\nabla ", i):
            j = _latex_name(s, i + 7)
            kind, text = "head", s[i:j]
        elif kind is None and s.startswith(r"\mathrm{d}", i):
            j = i + len(r"\mathrm{d}")
            if s.startswith(r"\left(", j):
                kind, text = "head", r"\mathrm{d}"
            else:
                kind, text = "name", s[i:_latex_name(s, j)]
        elif kind is None and (m := LATEX_HEADS.match(s, i)) and s.startswith(r"\left(", m.end()):
            kind, text = "head", m.group()
        elif kind is None and (m := re.compile(r"\d+(?:\.\d+)?(?:\\cdot 10\^\{-?\d+\})?").match(s, i)):
            kind, text = "num", m.group()
        elif kind is None and (c.isalpha() or s.startswith(r"\mathrm{", i) or c == "\\"):
            j = _latex_name(s, i)
            kind, text = ("head" if s.startswith(r"\left(", j) else "name"), s[i:j]
        elif kind is None and s.startswith("^{", i):
            kind, text = "sup", s[i + 2:_braced(s, i + 1) - 1]
        elif kind is None and s.startswith("_{", i):
            kind, text = "sub", s[i:_braced(s, i + 1)]
        elif kind is None and c in "+-:},":
            kind, text = "op", c
        if kind is None:
            raise Unreadable(f"cannot read {s[i:]!r} in {s!r}")
        i += len(text) if kind not in ("sup",) else len(text) + 3
        out.append((kind, text, spaced))
        spaced = False
    return out


# ----------------------------------------------------------------- reader

INFIX = {"⊙": "had", "⊘": "div", "⊗": "kron", ":": "frob",
         r"\odot": "had", r"\oslash": "div", r"\otimes": "kron"}
OPEN = {"(": ")", r"\left(": r"\right)", "|": "|", r"\left|": r"\right|"}


class Reader:
    """Precedence climbing over printed mathematics (see the module docstring)."""

    def __init__(self, text: str, notation: str):
        self.text, self.notation = text, notation
        self.tokens = pretty_tokens(text) if notation == "pretty" else latex_tokens(text)
        self.i = 0
        self.closers: list[str] = []        # what closes the brackets we are in (| is its own closer)

    def peek(self, k=0):
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else (None, None, False)

    def take(self, text=None):
        tok = self.peek()
        if text is not None and tok[1] != text:
            raise Unreadable(f"expected {text!r}, found {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    def read(self):
        t = self.sum()
        if self.i != len(self.tokens):
            raise Unreadable(f"unread {self.tokens[self.i:]} in {self.text!r}")
        return t

    def is_minus(self, tok):
        return tok[0] == "op" and tok[1] in ("−", "-")

    def sum(self):
        terms = [self.infix()]
        while self.peek()[1] in ("+", "−", "-"):
            sign = self.take()[1]
            if self.is_minus(self.peek()) or self.peek()[1] == "+":
                raise Unreadable(f"two signs in a row in {self.text!r}")
            t = self.infix()
            terms.append(scale(-1, t) if sign != "+" else t)
        return total(terms)

    def infix(self):
        """Operands joined by : ⊙ ⊘ ⊗: one kind of operator per chain (⊙ with ⊘), ':' and
        '⊗' once; the first operand may carry a sign, the others not."""
        left = self.signed()
        ops, items = [], [left]
        while self.peek()[0] == "op" and self.peek()[1] in INFIX:
            ops.append(INFIX[self.take()[1]])
            if self.is_minus(self.peek()):
                raise Unreadable(f"a sign after an infix product in {self.text!r}")
            items.append(self.juxtaposed())
        if not ops:
            return left
        kinds = set(ops)
        if kinds <= {"had", "div"}:
            return product("had", [items[0]] + [x if op == "had" else ("pow", x, num(-1))
                                                for op, x in zip(ops, items[1:])])
        if len(ops) > 1:
            raise Unreadable(f"{' and '.join(sorted(kinds))} meet unbracketed in {self.text!r}: it reads two ways")
        return frob(*items) if ops[0] == "frob" else product("kron", items)

    def signed(self):
        if self.is_minus(self.peek()):
            self.take()
            return scale(-1, self.juxtaposed())
        return self.juxtaposed()

    def starts_operand(self, tok) -> bool:
        kind, text, _ = tok
        if kind in ("num", "atom", "name", "head", "sqrt"):
            return True
        if kind == "norm":
            return text in ("‖", r"\left\|") and not (self.closers and self.closers[-1] == "‖"
                                                       and self.notation == "pretty")
        if kind == "op" and text in OPEN:
            return not (text == "|" and self.closers and self.closers[-1] == "|")
        return False

    def juxtaposed(self):
        factors = [self.postfix()]
        while self.starts_operand(self.peek()):
            factors.append(self.postfix())
        return factors[0] if len(factors) == 1 else product("mul", factors)

    def postfix(self):
        """A primary and at most one superscript: X⁻¹ᵀ reads two ways, (X⁻¹)ᵀ one."""
        t = self.primary()
        kind, text, spaced = self.peek()
        if kind == "sup" and not spaced:
            self.take()
            t = self.superscript(t, text)
        elif kind == "hat" and not spaced:
            self.take()
            t = ("pow", t, self.primary())
        if self.peek()[0] in ("sup", "hat") and not self.peek()[2]:
            raise Unreadable(f"two superscripts on one base in {self.text!r}")
        return t

    def superscript(self, base, text):
        if self.notation == "pretty":
            text = text.lstrip("∘")
            if text == "ᵀ":
                return ("T", base)
            if text == "⁻ᵀ":
                return ("T", ("pow", base, num(-1)))
            return ("pow", base, num(int(text.translate(SUPERSCRIPT_DIGITS))))
        text = text.replace(r"\circ", "").strip()
        if text == "T":
            return ("T", base)
        if text == "-T":
            return ("T", ("pow", base, num(-1)))
        return ("pow", base, Reader(text, "latex").read())

    def bracketed(self, close, arguments=False):
        """What stands between brackets; with `arguments`, a list `a, b` makes a tuple."""
        self.closers.append(close)
        items = [self.sum()]
        while arguments and self.peek()[1] == ",":
            self.take()
            items.append(self.sum())
        self.closers.pop()
        self.take(close)
        return items[0] if len(items) == 1 else tuple(items)

    def primary(self):
        kind, text, _ = self.take()
        if kind == "num":
            return num(self.number(text))
        if kind == "atom":
            return ("atom", text)
        if kind == "name":
            return ("atom", text)
        if kind == "head":
            opener = self.take()[1]
            close = OPEN[opener]
            empty = "()" if opener == "(" else r"\left(\right)"
            return ("fn", text + empty, self.bracketed(close, arguments=True))
        if kind == "sqrt":
            arg = self.bracketed("}")
            return ("fn", r"\sqrt{}", arg)
        if kind == "norm":                               # ‖x‖₂, \left\|x\right\|_{2}
            if self.notation == "pretty":
                arg = self.bracketed_norm()
                return arg
            self.closers.append(r"\right\|")
            arg = self.sum()
            self.closers.pop()
            self.take(r"\right\|")
            sub = self.take()[1] if self.peek()[0] == "sub" else ""
            return ("fn", r"\left\|\right\|" + sub, arg)
        if kind == "op" and text in OPEN:
            arg = self.bracketed(OPEN[text])
            return ("fn", "||" if text == "|" else r"\left|\right|", arg) if "|" in text else arg
        raise Unreadable(f"unexpected {text!r} in {self.text!r}")

    def bracketed_norm(self):
        self.closers.append("‖")
        arg = self.sum()
        self.closers.pop()
        kind, text, _ = self.take()
        if kind != "norm" or text == "‖":
            raise Unreadable(f"a norm without its subscript in {self.text!r}")
        return ("fn", "‖‖" + text[1:], arg)

    def number(self, text):
        if text in VULGAR:
            return VULGAR[text]
        if text.startswith(r"\frac"):
            n, d = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", text).groups()
            return Fraction(int(n), int(d))
        if "/" in text:
            return Fraction(text)
        if "×10" in text:
            mantissa, exponent = text.split("×10")
            return float(mantissa) * 10.0 ** int(exponent.translate(SUPERSCRIPT_DIGITS))
        if r"\cdot" in text:
            mantissa, exponent = re.fullmatch(r"(.*)\\cdot 10\^\{(-?\d+)\}", text).groups()
            return float(mantissa) * 10.0 ** int(exponent)
        return float(text)


def read(text: str, notation: str):
    return Reader(text, notation).read()


def assert_reads_as(text: str, e: E.Expr, notation: str, where: str = ""):
    expected = tree(e, Spelling(notation))
    try:
        got = read(text, notation)
    except Unreadable as err:
        raise AssertionError(f"{where}: {notation} {text!r} (of {e}) does not read one way: {err}") from None
    assert same(got, expected), f"{where}: {notation} {text!r} reads as {got},\n  but it was printed from {e}: {expected}"


# ------------------------------------------------------------- the reader itself

@pytest.mark.parametrize("text, notation, reading", [
    ("a₂ − y : da₂", "pretty", ("sum", (("atom", "a₂"), ("scale", -1.0, ("frob", ("atom", "y"), ("atom", "da₂")))))),
    ("(a₂ − y) : da₂", "pretty", ("frob", ("sum", (("atom", "a₂"), ("scale", -1.0, ("atom", "y")))), ("atom", "da₂"))),
    ("g : W dh + dW h", "pretty", ("sum", (("frob", ("atom", "g"), ("mul", (("atom", "W"), ("atom", "dh")))),
                                          ("mul", (("atom", "dW"), ("atom", "h")))))),
    ("a ⊙ W h", "pretty", ("had", (("atom", "a"), ("mul", (("atom", "W"), ("atom", "h")))))),
    ("(a ⊙ b) xᵀ", "pretty", ("mul", (("had", (("atom", "a"), ("atom", "b"))), ("T", ("atom", "x"))))),
    (r"a_{2} - y : \mathrm{d}a_{2}", "latex",
     ("sum", (("atom", "a_{2}"), ("scale", -1.0, ("frob", ("atom", "y"), ("atom", r"\mathrm{d}a_{2}")))))),
    (r"\left(1 - h^{\circ 2}\right) \odot \left(W^{T} g\right) x^{T}", "latex",
     ("had", (("sum", (num(1), ("scale", -1.0, ("pow", ("atom", "h"), num(2))))),
              ("mul", (("T", ("atom", "W")), ("atom", "g"), ("T", ("atom", "x"))))))),
])
def test_reader_reads_like_a_mathematician(text, notation, reading):
    assert same(read(text, notation), reading), read(text, notation)


@pytest.mark.parametrize("text, notation", [
    ("A ⊙ B : C", "pretty"), ("A : B ⊙ C", "pretty"), ("A ⊗ B ⊙ C", "pretty"), ("a : b : c", "pretty"),
    ("a + −b", "pretty"), ("a ⊙ −b", "pretty"), (r"A \odot B : C", "latex"), ("X⁻¹ᵀ", "pretty"),
])
def test_reader_refuses_what_reads_two_ways(text, notation):
    with pytest.raises(Unreadable):
        read(text, notation)


# ------------------------------------------------------- every printed line

def _derivations():
    out = [pytest.param("grad", r[1], r[2], r[3], id=r[0]) for r in ROWS if r[0] not in XFAIL]
    for path, wrt in LATEX_CASES:
        with open(path) as fh:
            out.append(pytest.param("grad", fh.read(), wrt, None, id=path))
    out += [pytest.param(kind, text, wrt, None, id=f"{kind}:{text}") for kind, text, wrt in [
        ("jacobian", "tanh(W*x)", "x"), ("jacobian", "A*X*B", "X"), ("jacobian", "softmax(x)", "x"),
        ("hessian", "x'*A*x", "x"), ("hessian", "logdet(X)", "X"), ("hessian", "sum(A*x)", "x"),
        ("hessian", "sum(log(1 + exp(-y .* (X*w))))", "w"), ("jacobian", "vec(A*X*B + X)", "X"),
        ("jacobian", "A*X*B - 2*X'", "X"),
    ]]
    return out


def _strip_why(line: str, why: str) -> str:
    return line[: -len(f"   ({why})")].rstrip() if why else line


def _where(why: str, notation: str):
    """The definition an explanation quotes: `where a₂ = W₂ h₁ + b₂`."""
    m = re.search(r"where (\S+) = (.*?)(?:; |$)" if notation == "pretty" else r"where \} (\S+) = (.*)$", why)
    assert m, f"no definition quoted in {why!r}"
    return m.group(2)


def check_derivation_reads_one_way(d, verbosity="brief"):
    """Every --steps line (and the definitions the explanations quote) and every result,
    in pretty and LaTeX, reads back as the tree it was printed from."""
    checked = 0
    rows = _lines(d, verbosity, lambda e: e, lambda s, merged: (s, merged))
    # pretty: the very lines the command prints
    explain = _explainer(to_pretty, pretty_name)
    block = steps_pretty(d, verbosity).splitlines()
    assert len(block) == len(rows)
    column = block[0].index(" = ") + 3
    for line, (label, e, why) in zip(block, rows):
        text = line[column:]
        if why:
            step, merged = why
            said = explain(step, merged)
            text = _strip_why(text, said)
            if step.definition is not None:
                assert_reads_as(_where(said, "pretty"), step.definition[1], "pretty", said)
        assert_reads_as(text, e, "pretty", line)
        if label is not None and label[0] == "expr":
            assert_reads_as(line[:column - 3].rstrip(), label[1], "pretty", line)
        checked += 1
    # LaTeX: the align* rows
    body = steps_latex(d, verbosity).split("\n", 1)[1].rsplit("\n", 1)[0].split(" \\\\\n")
    assert len(body) == len(rows)
    for line, (label, e, why) in zip(body, rows):
        lhs, rhs = line.split(" &= ", 1)
        if why:
            step, merged = why
            said = _latex_why(step, merged)
            assert rhs.endswith(" && " + said)
            rhs = rhs[: -len(" && " + said)]
            if step.definition is not None:
                assert_reads_as(_where(said, "latex"), step.definition[1], "latex", said)
        assert_reads_as(rhs, e, "latex", line)
        if label is not None and label[0] == "expr":
            assert_reads_as(lhs, label[1], "latex", line)
        checked += 1
    # the results, as d.pretty() and d.latex() print them
    for g, body in d.named:
        assert_reads_as(to_pretty(body), body, "pretty", g.name)
        assert_reads_as(to_latex(body), body, "latex", g.name)
    for name, g in d.results.items():
        assert_reads_as(to_pretty(g), g, "pretty", name)
        assert_reads_as(to_latex(g), g, "latex", name)
    return checked


@pytest.mark.parametrize("command, text, wrt, let", _derivations())
def test_every_printed_line_reads_one_way(command, text, wrt, let):
    d = getattr(matcalc, command)(text, wrt=wrt, let=let)
    assert check_derivation_reads_one_way(d) >= 2
    assert check_derivation_reads_one_way(d, "all") >= 2       # --steps=all


def test_the_mlp_steps_read_as_a_textbook_writes_them():
    """Issue 18's example, literally."""
    with open("examples/mlp.mc") as fh:
        d = matcalc.grad(fh.read(), wrt=["W1", "W2"])
    pretty, latex = d.pretty(steps=True), d.latex(steps=True)
    assert "= (a₂ − y) : da₂ " in pretty and "= g_a₂ : (W₂ dh₁ + dW₂ h₁) " in pretty
    assert r"&= \left(a_{2} - y\right) : \mathrm{d}a_{2} &&" in latex
    assert r"&= g_{a_{2}} : \left(W_{2} \mathrm{d}h_{1} + \mathrm{d}W_{2} h_{1}\right) &&" in latex
    # issue 13: the LaTeX result keeps the brackets around the Hadamard product
    assert r"= \left(\left(1 - h_{1}^{\circ 2}\right) \odot W_{2}^{T} g_{a_{2}}\right) x^{T}" in latex


# ------------------------------------------------ random expressions, both notations

@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.one_of(_expr("scalar", 3), _expr("vector", 3), _expr("matrix", 3)))
def test_random_expressions_read_one_way(text):
    e = matcalc.parse(text, DECLS).value
    assert_reads_as(to_pretty(e), e, "pretty", text)
    assert_reads_as(to_latex(e), e, "latex", text)



def test_a_new_node_printed_as_a_call_is_read_without_an_entry(monkeypatch):
    """Other operations (solve(A, B), axis sums, ...) print as calls: the reader takes
    their arguments apart at the commas and `called` finds the head from the printers."""
    from dataclasses import field

    from matcalc.printing.latex import LatexPrinter
    from matcalc.printing.pretty import PrettyPrinter

    @E.node
    class Pair(E.Expr):
        a: E.Expr
        b: E.Expr
        shape: tuple = field(default=(1, 1))

        def children(self):
            return (self.a, self.b)

        def with_children(self, kids):
            return Pair(*kids)

    monkeypatch.setattr(PrettyPrinter, "_print_Pair", lambda p, e: f"pair({p.print(e.a)}, {p.print(e.b)})",
                        raising=False)
    monkeypatch.setattr(LatexPrinter, "_print_Pair",
                        lambda p, e: rf"\operatorname{{pair}}\left({p.print(e.a)}, {p.print(e.b)}\right)",
                        raising=False)
    x, y = (E.Symbol(n, ("n", 1), "vector") for n in "xy")
    A = E.Symbol("A", ("n", "n"))
    e = E.add(Pair(E.mul(A, x), E.hadamard(x, y)), E.frobenius(x, E.add(x, y)))
    for notation, printer in (("pretty", to_pretty), ("latex", to_latex)):
        assert_reads_as(printer(e), e, notation)
    assert to_pretty(e) == "pair(A x, x ⊙ y) + x : (x + y)"
