"""Pretty output: Unicode mathematics for reading in a terminal.

Layer L2: imports expr and the precedence table.  For people, not for
parsing back (the text printer is the paste-back format):

    products by juxtaposition (W h), Xᵀ, X⁻¹, X⁻ᵀ, powers as superscripts (s²,
    X³ a matrix power, X∘² an elementwise power of a matrix; a vector has
    only the elementwise one, so h² is plain), ⊙ ⊘ ⊗, A : B for the Frobenius
    product, − (U+2212), ½, tr det log det diag vec, σ for the sigmoid,
    ‖x‖₂ ‖x‖₁ (‖X‖_F for a matrix), Σ(x) for the sum of all entries,
    𝟙 for the all-ones vector (𝟙ᵀ a row, 𝟙𝟙ᵀ a matrix), ∇f for the gradient
    of an opaque function; Greek names as letters and trailing digits as
    subscripts (lambda → λ, W1 → W₁).

Parentheses follow the reader's precedence table (precedence.READER), shared
with LaTeX through MathPrinter: `:` ⊙ ⊘ ⊗ bind like products, juxtaposition
tighter (`(A ⊙ B) C`, `(a₂ − y) : da₂`).
"""
from __future__ import annotations

import re
from fractions import Fraction

from .. import expr as E
from ..expr import Fn
from ..shapes import is_column, is_row
from .precedence import JUXTAPOSED, MathPrinter, coefficient, differential_name, orientation, print_call

MINUS = "\u2212"
SUPERSCRIPT = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# sigma and Sigma stay words: σ is the sigmoid and Σ the sum here.
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ",
         "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
         "xi": "ξ", "pi": "π", "rho": "ρ", "tau": "τ", "upsilon": "υ", "phi": "φ", "chi": "χ",
         "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ",
         "Xi": "Ξ", "Pi": "Π", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω"}

VULGAR = {Fraction(1, 2): "½", Fraction(1, 3): "⅓", Fraction(2, 3): "⅔", Fraction(1, 4): "¼",
          Fraction(3, 4): "¾", Fraction(1, 5): "⅕", Fraction(2, 5): "⅖", Fraction(3, 5): "⅗",
          Fraction(4, 5): "⅘", Fraction(1, 6): "⅙", Fraction(5, 6): "⅚", Fraction(1, 7): "⅐",
          Fraction(1, 8): "⅛", Fraction(3, 8): "⅜", Fraction(5, 8): "⅝", Fraction(7, 8): "⅞",
          Fraction(1, 9): "⅑", Fraction(1, 10): "⅒"}

# Every function but inv (a superscript, printed by _print_Apply); {x} is the argument.
FUNCTIONS = {
    Fn.TRACE: "tr({x})", Fn.DET: "det({x})", Fn.LOGDET: "log det({x})",
    Fn.DIAG: "diag({x})", Fn.DIAGV: "diag({x})", Fn.VEC: "vec({x})", Fn.SUM: "Σ({x})",
    Fn.NORM1: "‖{x}‖₁", Fn.NORM2: "‖{x}‖₂", Fn.SOFTMAX: "softmax({x})",
    Fn.LOGSUMEXP: "logsumexp({x})", Fn.EXP: "exp({x})", Fn.LOG: "log({x})", Fn.SIN: "sin({x})",
    Fn.COS: "cos({x})", Fn.TAN: "tan({x})", Fn.TANH: "tanh({x})", Fn.SQRT: "√({x})",
    Fn.ABS: "|{x}|", Fn.SIGN: "sign({x})", Fn.STEP: "step({x})", Fn.SIGMOID: "σ({x})",
    Fn.RELU: "relu({x})", Fn.SOFTPLUS: "softplus({x})", Fn.ARCSIN: "arcsin({x})",
    Fn.ARCCOS: "arccos({x})", Fn.ARCTAN: "arctan({x})", Fn.SINH: "sinh({x})", Fn.COSH: "cosh({x})",
    Fn.LOG1P: "log1p({x})", Fn.EXPM1: "expm1({x})",
    Fn.EXPM: "expm({x})", Fn.LOGM: "logm({x})", Fn.SQRTM: "sqrtm({x})", Fn.EIGVALS: "λ({x})",
    Fn.EIGMAX: "λmax({x})", Fn.EIGMIN: "λmin({x})", Fn.EIGVECS: "eigvecs({x})",
    Fn.EIGVEC_MAX: "umax({x})", Fn.EIGVEC_MIN: "umin({x})", Fn.NORM_NUC: "‖{x}‖∗",
    Fn.NORM_SPEC: "σmax({x})", Fn.CHOL: "chol({x})", Fn.PINV: "{x}⁺", Fn.ADJ: "adj({x})",
    Fn.TRIL_HALF: "Φ({x})", Fn.POLAR: "polar({x})",
    Fn.SUM_COLS: "Σ₁({x})", Fn.SUM_ROWS: "Σ₂({x})", Fn.SOFTMAX_COLS: "softmax₁({x})",
    Fn.SOFTMAX_ROWS: "softmax₂({x})", Fn.LOGSUMEXP_COLS: "logsumexp₁({x})",
    Fn.LOGSUMEXP_ROWS: "logsumexp₂({x})",
}
FROBENIUS_NORM = "‖{x}‖_F"          # norm2 of a matrix

ONES = {"column": "𝟙", "row": "𝟙ᵀ", "matrix": "𝟙𝟙ᵀ"}

# ∂L/∂x, per command: what a derivation's result is called.
LABELS = {"grad": "∂L/∂{}", "jacobian": "∂f/∂{}", "hessian": "∂²L/∂{}²"}
# With a matrix in it, a Jacobian or Hessian is in vec form (as the LaTeX says).
VEC_LABELS = {"jacobian": "∂vec(f)/∂vec({})", "hessian": "∂²L/∂vec({})²"}


def derivative_text(d, name: str, spell=str) -> str:
    """∂L/∂X, ∂f/∂x, or ∂vec(f)/∂vec(X) where the variable or f is a matrix; ∂²L/∂X∂Y for a Hessian block."""
    if name in d.blocks:
        matrix = lambda v: v in d.program.inputs and 1 not in d.program.inputs[v].shape
        return "∂²L/" + "".join(f"∂vec({spell(v)})" if matrix(v) else f"∂{spell(v)}" for v in d.blocks[name])
    shape = next((s.shape for s in [d.program.inputs.get(name)] + [s for s, _ in d.program.definitions
                                                                     if s.name == name] if s is not None), None)
    matrix = lambda sh: sh is not None and sh[0] != 1 and sh[1] != 1
    vec = d.command in VEC_LABELS and (matrix(shape) or (d.command == "jacobian" and matrix(d.program.output.shape)
                                                          and shape != (1, 1)))      # ∂F/∂α is shaped like F
    return (VEC_LABELS if vec else LABELS)[d.command].format(spell(name))


def pretty_name(name: str) -> str:
    """lambda → λ, W1 → W₁, g_a2 → g_a₂, x_1 → x₁."""
    parts = []
    for part in name.split("_"):
        if part.isdigit() and parts:
            parts[-1] += part.translate(SUBSCRIPT)
            continue
        m = re.fullmatch(r"(.*?)(\d*)", part)
        parts.append(GREEK.get(m.group(1), m.group(1)) + m.group(2).translate(SUBSCRIPT))
    return "_".join(parts)


def superscript(k: int) -> str:
    return str(k).translate(SUPERSCRIPT)


def pretty_number(v) -> str:
    """2, ½, 3/7, 1.5, 2.5×10⁻⁷; a minus sign is U+2212."""
    sign, v = (MINUS, -v) if v < 0 else ("", v)
    if v == E.PI:
        return sign + "π"
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return sign + str(v.numerator)
        return sign + VULGAR.get(v, f"{v.numerator}/{v.denominator}")
    mantissa, _, exponent = repr(float(v)).partition("e")
    return sign + mantissa + (f"×10{superscript(int(exponent))}" if exponent else "")


class PrettyPrinter(MathPrinter):
    what = "pretty"
    MINUS = MINUS

    def _print_Symbol(self, e):
        return pretty_name(e.name)

    def _print_Const(self, e):
        return pretty_number(e.value)

    def _print_Size(self, e):
        return pretty_name(str(e.dim))

    def _print_Identity(self, e):
        return "I"

    def _print_Zero(self, e):
        return "0"

    def _print_Commutation(self, e):
        return f"K({e.m},{e.n})"

    def _print_Broadcast(self, e):
        ones = ONES[orientation(e.shape)]
        return ones if E.is_const(e.value, 1) else f"{self.wrap(e.value, JUXTAPOSED)} {ones}"

    def _print_Differential(self, e):
        if isinstance(e.target, E.Symbol):
            return "d" + self.print(e.target)
        return f"d({self.print(e.target)})"

    def _print_Mul(self, e):
        c, factors = coefficient(e)
        sign = MINUS if c < 0 else ""
        c = abs(c)
        number = pretty_number(c)
        if "/" in number and factors:         # (3/7) x, not 3/7 x, which reads as 3/(7 x)
            number = f"({number})"
        parts = [number] if c != 1 or not factors else []
        return sign + " ".join(parts + self.factors(factors, bool(parts or sign)))

    def _print_Transpose(self, e):
        if isinstance(e.arg, E.Apply) and e.arg.fn is Fn.INV:
            return self.base(e.arg.arg) + "⁻ᵀ"
        return self.base(e.arg) + "ᵀ"

    def _print_Power(self, e):
        p = e.exponent
        # X∘² is elementwise; a vector (or scalar) has no other power, so h² is plain
        mark = "" if e.base.is_scalar or is_column(e.shape) or is_row(e.shape) else "∘"
        if isinstance(p, E.Const) and isinstance(p.value, Fraction) and p.value.denominator == 1:
            return self.base(e.base) + mark + superscript(p.value.numerator)
        if E.is_const(p, Fraction(1, 2)):
            return f"√({self.print(e.base)})"
        return f"{self.base(e.base)}{mark}^{self.exponent(p)}"

    def _print_MatPow(self, e):
        return self.base(e.base) + superscript(e.k)

    def _print_Apply(self, e):
        if e.fn is Fn.INV:
            return self.base(e.arg) + "⁻¹"
        if e.fn is Fn.PINV:
            return self.base(e.arg) + "⁺"
        if e.fn is Fn.NORM2 and orientation(e.arg.shape) == "matrix":
            return FROBENIUS_NORM.format(x=self.print(e.arg))
        return FUNCTIONS[e.fn].format(x=self.print(e.arg))

    def _print_Solve(self, e):            # and expm_adj(Y, G), expm_adj_jac(Y)
        return print_call(self, e)

    _print_FrechetAdj = _print_FrechetJac = _print_KronAdjLeft = _print_KronAdjRight = _print_Solve

    def _print_Unvec(self, e):            # its shape is the line's (a gradient shaped like X)
        return f"vec⁻¹({self.print(e.arg)})"

    def _print_Call(self, e):
        return f"{pretty_name(e.name)}({self.print(e.arg)})"

    def _print_GradCall(self, e):
        return f"∇{pretty_name(e.name)}({self.print(e.arg)})"


to_pretty = PrettyPrinter()


def align_on_equals(rows: list[tuple[str, str, str]], why_column: int = 72) -> str:
    """Lines `lhs = rhs` aligned on `=` (an empty lhs continues the one above),
    each explanation in parentheses in a column at the right."""
    width = max((len(lhs) for lhs, _, _ in rows), default=0)
    body = [(f"{lhs.ljust(width)} = {rhs}", why) for lhs, rhs, why in rows]
    col = min(max(len(line) for line, _ in body) + 3, why_column)
    return "\n".join((line.ljust(col - 3) + f"   ({why})" if why else line).rstrip()
                     for line, why in body)


def derivation_pretty(d) -> str:
    """The results as `∂L/∂X = ...`, after the shared names (adjoints, products), one per line."""
    rows = [(pretty_name(g.name), to_pretty(body), "") for g, body in d.named]
    if d.command == "differential":          # one line: the total differential
        return align_on_equals(rows + [("d" + pretty_name(differential_name(d)), to_pretty(d.total), "")])
    rows += [(derivative_text(d, name, pretty_name), to_pretty(g), "") for name, g in d.results.items()]
    return align_on_equals(rows)
