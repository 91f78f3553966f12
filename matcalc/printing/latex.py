"""LaTeX, plain style: W^{T}, \\operatorname{tr}, \\odot, \\otimes.

Layer L2: imports expr, the precedence table and the elementwise registry.
Importing it installs `display` as the _repr_latex_ of expressions and
programs, which is how Jupyter shows them.
"""
from __future__ import annotations

import re
from fractions import Fraction

from .. import expr as E
from ..expr import Fn
from ..rules.elementwise import ELEMENTWISE
from .precedence import JUXTAPOSED, MathPrinter, call_parts, coefficient, differential_name, orientation

GREEK = set("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
            "pi rho sigma tau upsilon phi chi psi omega".split())
UPPER_GREEK = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}

NAMED = {
    Fn.TRACE: r"\operatorname{{tr}}\left({x}\right)",
    Fn.DET: r"\det\left({x}\right)",
    Fn.LOGDET: r"\log\det\left({x}\right)",
    Fn.DIAG: r"\operatorname{{diag}}\left({x}\right)",
    Fn.DIAGV: r"\operatorname{{diag}}\left({x}\right)",
    Fn.VEC: r"\operatorname{{vec}}\left({x}\right)",
    Fn.SUM: r"\operatorname{{sum}}\left({x}\right)",
    Fn.NORM1: r"\left\|{x}\right\|_{{1}}",
    Fn.NORM2: r"\left\|{x}\right\|_{{2}}",
    Fn.SOFTMAX: r"\operatorname{{softmax}}\left({x}\right)",
    Fn.LOGSUMEXP: r"\operatorname{{logsumexp}}\left({x}\right)",
    **{fn: entry.latex for fn, entry in ELEMENTWISE.items()},
    Fn.EXPM: r"\operatorname{{expm}}\left({x}\right)",
    Fn.LOGM: r"\operatorname{{logm}}\left({x}\right)",
    Fn.SQRTM: r"\operatorname{{sqrtm}}\left({x}\right)",
    Fn.EIGVALS: r"\lambda\left({x}\right)",
    Fn.EIGMAX: r"\lambda_{{\max}}\left({x}\right)",
    Fn.EIGMIN: r"\lambda_{{\min}}\left({x}\right)",
    Fn.EIGVECS: r"\operatorname{{eigvecs}}\left({x}\right)",
    Fn.EIGVEC_MAX: r"u_{{\max}}\left({x}\right)",
    Fn.EIGVEC_MIN: r"u_{{\min}}\left({x}\right)",
    Fn.NORM_NUC: r"\left\|{x}\right\|_{{*}}",
    Fn.NORM_SPEC: r"\sigma_{{\max}}\left({x}\right)",
    Fn.CHOL: r"\operatorname{{chol}}\left({x}\right)",
    Fn.PINV: r"\operatorname{{pinv}}\left({x}\right)",
    Fn.ADJ: r"\operatorname{{adj}}\left({x}\right)",
    Fn.TRIL_HALF: r"\Phi\left({x}\right)",
    Fn.POLAR: r"\operatorname{{polar}}\left({x}\right)",
    Fn.SUM_COLS: r"\operatorname{{sum}}_{{1}}\left({x}\right)",
    Fn.SUM_ROWS: r"\operatorname{{sum}}_{{2}}\left({x}\right)",
    Fn.SOFTMAX_COLS: r"\operatorname{{softmax}}_{{1}}\left({x}\right)",
    Fn.SOFTMAX_ROWS: r"\operatorname{{softmax}}_{{2}}\left({x}\right)",
    Fn.LOGSUMEXP_COLS: r"\operatorname{{logsumexp}}_{{1}}\left({x}\right)",
    Fn.LOGSUMEXP_ROWS: r"\operatorname{{logsumexp}}_{{2}}\left({x}\right)",
}


# the all-ones array by orientation, as pretty's 𝟙, 𝟙ᵀ, 𝟙𝟙ᵀ
ONES = {"column": r"\mathbb{1}", "row": r"\mathbb{1}^{T}", "matrix": r"\mathbb{1} \mathbb{1}^{T}"}


def latex_name(name: str) -> str:
    base, _, sub = name.partition("_")
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", base)
    if m and not sub:
        base, sub = m.group(1), m.group(2)
    if base in GREEK or base in UPPER_GREEK:
        base = "\\" + base
    elif len(base) > 1:
        base = r"\mathrm{" + base + "}"
    return f"{base}_{{{latex_name(sub) if not sub.isdigit() else sub}}}" if sub else base


def dim_latex(d) -> str:
    """A dimension: n, 3, or m n for the product m*n."""
    return " ".join(x if x.isdigit() else latex_name(x) for x in str(d).split("*"))


class LatexPrinter(MathPrinter):
    """Brackets as pretty output's (MathPrinter); only the spellings differ."""
    what = "LaTeX"
    MINUS, TIMES, DIVIDE, KRON = "-", r"\odot", r"\oslash", r"\otimes"

    def parenthesised(self, s: str) -> str:
        return rf"\left({s}\right)"

    def _print_Symbol(self, e):
        return latex_name(e.name)

    def _print_Size(self, e):
        return latex_name(str(e.dim))

    def _print_Const(self, e):
        v = e.value
        if abs(v) == E.PI:
            return r"\pi" if v > 0 else r"-\pi"
        if isinstance(v, Fraction) and v.denominator != 1:
            sign = "-" if v < 0 else ""
            return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
        if isinstance(v, Fraction):
            return str(v.numerator)
        return f"{float(v):g}".replace("e", r"\cdot 10^{") + ("}" if "e" in f"{float(v):g}" else "")

    def _print_Identity(self, e):
        return "I"

    def _print_Zero(self, e):
        return "0"

    def _print_Commutation(self, e):
        return f"K_{{{e.m},{e.n}}}"

    def _print_Broadcast(self, e):
        ones = ONES[orientation(e.shape)]
        return ones if E.is_const(e.value, 1) else rf"{self.wrap(e.value, JUXTAPOSED)} {ones}"

    def _print_Differential(self, e):
        if isinstance(e.target, E.Symbol):
            return r"\mathrm{d}" + self.print(e.target)
        return r"\mathrm{d}\left(" + self.print(e.target) + r"\right)"

    def _print_Mul(self, e):
        c, factors = coefficient(e)
        sign = ""
        if c < 0:
            sign, c = "-", -c
        parts = []
        if isinstance(c, Fraction) and c.denominator != 1:
            parts.append(rf"\frac{{{c.numerator}}}{{{c.denominator}}}")
        elif c != 1 or not factors:
            parts.append(self.print(E.Const(c)))
        return sign + " ".join(parts + self.factors(factors, bool(parts or sign)))

    def _print_Transpose(self, e):
        if isinstance(e.arg, E.Apply) and e.arg.fn is Fn.INV:
            return self.base(e.arg.arg) + "^{-T}"
        return self.base(e.arg) + "^{T}"

    def _print_Power(self, e):
        circ = "" if e.base.is_scalar else r"\circ "
        return f"{self.base(e.base)}^{{{circ}{self.print(e.exponent)}}}"

    def _print_MatPow(self, e):
        return f"{self.base(e.base)}^{{{e.k}}}"

    def _print_Apply(self, e):
        if e.fn is Fn.INV:
            return self.base(e.arg) + "^{-1}"
        return NAMED[e.fn].format(x=self.print(e.arg))

    def _print_Solve(self, e):
        return rf"\operatorname{{solve}}\left({self.print(e.a)}, {self.print(e.b)}\right)"

    def _print_FrechetAdj(self, e):
        name = E.FRECHET_ADJ[e.fn].replace("_", r"\_")
        return rf"\operatorname{{{name}}}\left({self.print(e.x)}, {self.print(e.g)}\right)"

    def _print_FrechetJac(self, e):
        name = E.FRECHET_ADJ[e.fn].replace("_", r"\_")
        return rf"\operatorname{{{name}\_jac}}\left({self.print(e.x)}\right)"

    def _print_KronAdjLeft(self, e):      # and kron_adj_right(G, B)
        name, args = call_parts(e)
        name = name.replace("_", r"\_")
        return rf"\operatorname{{{name}}}\left({', '.join(self.print(a) for a in args)}\right)"

    _print_KronAdjRight = _print_KronAdjLeft

    def _print_Unvec(self, e):
        rows, cols = (dim_latex(d) for d in e.shape)
        return rf"\operatorname{{vec}}^{{-1}}_{{{rows} \times {cols}}}\left({self.print(e.arg)}\right)"

    def _print_Call(self, e):
        return rf"{latex_name(e.name)}\left({self.print(e.arg)}\right)"

    def _print_GradCall(self, e):
        return rf"\nabla {latex_name(e.name)}\left({self.print(e.arg)}\right)"


to_latex = LatexPrinter()


def derivative_label(command: str, name: str) -> str:
    x = latex_name(name)
    return {"grad": rf"\frac{{\partial L}}{{\partial {x}}}",
            "jacobian": rf"\frac{{\partial \operatorname{{vec}} f}}{{\partial \operatorname{{vec}} {x}}}",
            "jacobian by a scalar": rf"\frac{{\partial f}}{{\partial {x}}}",      # shaped like f
            "hessian": rf"\frac{{\partial^2 L}}{{\partial \operatorname{{vec}} {x}^2}}"}[command]


def block_label(x: str, y: str) -> str:
    """A Hessian block ∂²L/∂vec(X)∂vec(Y)."""
    return (rf"\frac{{\partial^2 L}}{{\partial \operatorname{{vec}} {latex_name(x)}\,"
            rf"\partial \operatorname{{vec}} {latex_name(y)}}}")


def result_label(d, name: str) -> str:
    """The LaTeX left side for d's result by `name` (a variable, or a Hessian block's key)."""
    pair = d.blocks.get(name)
    return block_label(*pair) if pair else derivative_label(label_command(d, name), name)


def label_command(d, name: str) -> str:
    """The derivative_label key for d's result by `name`."""
    variable = d.program.inputs.get(name) or next((s for s, _ in d.program.definitions if s.name == name), None)
    scalar = variable is not None and variable.is_scalar
    return "jacobian by a scalar" if d.command == "jacobian" and scalar else d.command


def derivation_latex(d) -> str:
    """The results (and shared adjoints) as LaTeX."""
    lines = [f"{latex_name(g.name)} &= {to_latex(body)}" for g, body in d.named]
    if d.command == "differential":          # one line: the total differential
        lines.append(rf"\mathrm{{d}}{latex_name(differential_name(d))} &= {to_latex(d.total)}")
    for name, g in d.results.items() if d.command != "differential" else ():
        lines.append(f"{result_label(d, name)} &= {to_latex(g)}")
    if len(lines) == 1:
        return lines[0].replace(" &= ", " = ")
    return align(lines)


def align(lines: list[str]) -> str:
    """An align* block, one line per row (rows already carry their & marks)."""
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def display_math(tex: str) -> str:
    """LaTeX as Jupyter displays it.  $$...$$ around an align* renders in MathJax
    (the classic notebook, JupyterLab, nbconvert's HTML) and in KaTeX (VS Code),
    where a bare align* renders only in MathJax."""
    return f"$${tex}$$"


def _space(sym: E.Symbol) -> str:
    r"""The set a symbol lives in: \mathbb{R}^{m \times n}, \mathbb{S}^{n} if symmetric."""
    rows, cols = (dim_latex(d) for d in sym.shape)
    if sym.symmetric:
        return rf"\mathbb{{S}}^{{{rows}}}"
    if sym.is_scalar:
        return r"\mathbb{R}"
    return rf"\mathbb{{R}}^{{{rows}}}" if cols == "1" else rf"\mathbb{{R}}^{{{rows} \times {cols}}}"


def program_latex(p: E.Program) -> str:
    """A parsed program: its definitions in order, then where its inputs live
    (the shapes matcalc inferred, which is what parse() is for)."""
    where = r",\ ".join(f"{latex_name(name)} \\in {_space(sym)}" for name, sym in p.inputs.items())
    where = rf"\text{{where }} {where}" if where else ""
    lines = [f"{latex_name(sym.name)} &= {to_latex(body)}" for sym, body in p.definitions]
    if not lines:
        return to_latex(p.output) + (rf" \qquad {where}" if where else "")
    if p.output is not p.definitions[-1][0]:      # a bare expression after the definitions
        lines.append(f"&{to_latex(p.output)}")
    if where:
        lines.append(f"&{where}")
    return align(lines)


def display(obj: E.Expr | E.Program) -> str:
    return display_math(program_latex(obj) if isinstance(obj, E.Program) else to_latex(obj))


E._LATEX_HOOK[0] = display
