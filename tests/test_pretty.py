"""--format pretty: Unicode mathematics for a terminal (matcalc/printing/pretty.py).

Exact strings for representative results, the spelling tables covered key by
key, steps aligned on `=`, and no ASCII operator left where a Unicode one exists.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

import matcalc
from matcalc import expr as E
from matcalc.expr import Fn
from matcalc.printing.pretty import FUNCTIONS, align_on_equals, pretty_name, pretty_number, to_pretty

CLI = [sys.executable, "-m", "matcalc"]
MLP = "a1 = W1*x + b1\nh1 = tanh(a1)\na2 = W2*h1 + b2\nL = norm2(a2 - y)^2"
LOGISTIC = "sum(log(1 + exp(-y .* (X*w))))"

# (command, expression, wrt, declarations, the pretty output)
CASES = [
    ("grad", "f(W*h + b)", "W", {"f": "function"}, "∂L/∂W = ∇f(W h + b) hᵀ"),
    ("grad", "norm2(W*h + b - y)^2", "W", None, "∂L/∂W = 2 (W h + b − y) hᵀ"),
    ("grad", "x'*A*x", "x", None, "∂L/∂x = (A + Aᵀ) x"),
    ("grad", "logdet(X)", "X", None, "∂L/∂X = X⁻ᵀ"),
    ("grad", "det(X)", "X", None, "∂L/∂X = det(X) X⁻ᵀ"),
    ("grad", LOGISTIC, "w", None, "∂L/∂w = −Xᵀ (σ(−(X w ⊙ y)) ⊙ y)"),
    ("grad", "lambda*norm2(W)^2", "W", None, "∂L/∂W = 2 λ W"),
    ("grad", "tr(X^-1)", "X", None, "∂L/∂X = −(X⁻ᵀ)²"),
    ("grad", "sum(X.^3)", "X", None, "∂L/∂X = 3 X∘²"),
    ("grad", "sum(sqrt(x))", "x", None, "∂L/∂x = ½ √(x)⁻¹"),
    ("grad", "sum(X*w)", "w", None, "∂L/∂w = Xᵀ 𝟙"),
    ("grad", "(a'*x)^2", "x", None, "∂L/∂x = 2 (aᵀ x) a"),
    ("grad", "sum(relu(x)) + norm2(x)", "x", None, "∂L/∂x = step(x) + ‖x‖₂⁻¹ x"),
    ("grad", "x1'*W1*x2", "W1", None, "∂L/∂W₁ = x₁ x₂ᵀ"),
    ("jacobian", "A*X*B", "X", None, "∂vec(f)/∂vec(X) = Bᵀ ⊗ A"),
    ("jacobian", "tanh(W*x)", "x", None, "∂f/∂x = diag(1 − tanh(W x)²) W"),
    ("jacobian", "softmax(x)", "x", None, "∂f/∂x = diag(softmax(x)) − softmax(x) softmax(x)ᵀ"),
    ("hessian", "x'*A*x", "x", None, "∂²L/∂x² = A + Aᵀ"),
    ("hessian", "logdet(X)", "X", None, "∂²L/∂vec(X)² = −(X⁻¹ ⊗ X⁻ᵀ) K(n,n)"),
    ("hessian", LOGISTIC, "w", None, "∂²L/∂w² = Xᵀ diag((1 − σ(−(X w ⊙ y))) ⊙ σ(−(X w ⊙ y)) ⊙ y²) X"),
]


@pytest.mark.parametrize("command, text, wrt, let, expected", CASES, ids=[c[1] for c in CASES])
def test_pretty_result(command, text, wrt, let, expected):
    assert getattr(matcalc, command)(text, wrt=wrt, let=let).pretty() == expected


def test_program_prints_one_definition_per_line_aligned():
    d = matcalc.grad(MLP, wrt=["W1", "W2"])
    assert d.pretty().splitlines() == [
        "g_a₂   = 2 (a₂ − y)",
        "∂L/∂W₁ = ((1 − h₁²) ⊙ W₂ᵀ g_a₂) xᵀ",
        "∂L/∂W₂ = g_a₂ h₁ᵀ",
    ]


# ------------------------------------------------------------- steps

def _equals_columns(block: str) -> set[int]:
    return {line.index(" = ") for line in block.splitlines()}


@pytest.mark.parametrize("text, wrt, let", [
    ("a = W*h + b; L = f(a)", "W", {"f": "function"}),
    ("x'*A*x", "x", None),
    (MLP, ["W1", "W2"], None),
    (LOGISTIC, "w", None),
])
def test_steps_are_aligned_on_equals(text, wrt, let):
    for steps in (True, "all"):
        block = matcalc.grad(text, wrt=wrt, let=let).pretty(steps=steps)
        assert len(block.splitlines()) >= 3
        assert len(_equals_columns(block)) == 1, block
        assert all(line == line.rstrip() for line in block.splitlines())


def test_backprop_steps_exactly():
    d = matcalc.grad("a = W*h + b; L = f(a)", wrt="W", let={"f": "function"})
    assert d.pretty(steps=True).splitlines() == [
        "dL    = d(f(a))",
        "      = ∇f(a)ᵀ da     (chain rule; where L = f(a))",
        "      = ∇f(a) : da    (A : BC = BᵀA : C)",
        "g_a   = ∇f(a)         (∂L/∂a, passed back to the definition of a)",
        "dL    = g_a : da",
        "      = g_a : dW h    (product rule; where a = W h + b; also linearity)",
        "      = g_a hᵀ : dW   (A : BC = ACᵀ : B)",
        "∂L/∂W = ∇f(a) hᵀ",
    ]


def test_steps_show_definitions_in_pretty_form():
    block = matcalc.grad(MLP, wrt="W1").pretty(steps=True)
    assert "where h₁ = tanh(a₁)" in block
    assert "where a₁ = W₁ x + b₁" in block
    assert "∂L/∂a₂, passed back" in block


def test_long_lines_keep_a_gap_before_the_explanation():
    rows = [("dL", "x" * 90, "a rule"), ("", "y", "another")]
    lines = align_on_equals(rows).splitlines()
    assert lines[0].endswith("x   (a rule)")
    assert lines[1].index("(another)") == 72


# ------------------------------------------------ no ASCII where Unicode exists

ASCII_FORMS = re.compile(r"[-'*]|\.\*|\./|\.\^|grad_|inv\(|kron\(|sigmoid|norm[12]|ones")


@pytest.mark.parametrize("command, text, wrt, let, expected", CASES, ids=[c[1] for c in CASES])
def test_no_ascii_operators_left(command, text, wrt, let, expected):
    d = getattr(matcalc, command)(text, wrt=wrt, let=let)
    for block in (d.pretty(), d.pretty(steps="all")):
        for line in block.splitlines():
            math = re.sub(r"\s{3}\(.*\)$", "", line)   # explanations name identities in words
            assert not ASCII_FORMS.search(math), line


# ------------------------------------------------------------- the tables

def test_every_function_has_a_spelling():
    assert set(FUNCTIONS) | {Fn.INV} == set(Fn)


@pytest.mark.parametrize("fn", [fn for fn in Fn if fn is not Fn.INV], ids=lambda fn: fn.name)
def test_every_function_prints(fn):
    x = E.Symbol("x", ("n", 1), "vector")
    X = E.Symbol("X", ("n", "n"), "matrix")
    arg = X if fn in (Fn.TRACE, Fn.DET, Fn.LOGDET, Fn.DIAGV, Fn.VEC) or fn in E.FN_SHAPES and \
        fn not in (Fn.DIAG, Fn.SOFTMAX, Fn.LOGSUMEXP, Fn.SUM, Fn.NORM1, Fn.NORM2) else x   # matrix functions
    out = to_pretty(E.apply(fn, arg))
    assert arg.name in out and not ASCII_FORMS.search(out), out


@pytest.mark.parametrize("name, shown", [("lambda", "λ"), ("W1", "W₁"), ("g_a2", "g_a₂"), ("x_1", "x₁"),
                                         ("Omega", "Ω"), ("sigma", "sigma"), ("Sigma", "Sigma"),
                                         ("alpha_2", "α₂"), ("J_h1_x", "J_h₁_x")])
def test_names(name, shown):
    assert pretty_name(name) == shown


@pytest.mark.parametrize("value, shown", [(E.Fraction(-3), "−3"), (E.Fraction(1, 2), "½"),
                                          (E.Fraction(-2, 3), "−⅔"), (E.Fraction(3, 7), "3/7"),
                                          (2.5e-7, "2.5×10⁻⁷"), (-1.5, "−1.5")])
def test_numbers(value, shown):
    assert pretty_number(value) == shown


def test_frobenius_and_ones_and_norms():
    X = E.Symbol("X", ("m", "n"), "matrix")
    Y = E.Symbol("Y", ("m", "n"), "matrix")
    assert to_pretty(E.frobenius(X, E.mul(E.const(2), Y))) == "X : 2 Y"
    assert to_pretty(E.apply(Fn.NORM2, X)) == "‖X‖_F"
    assert to_pretty(E.ones(("m", "n"))) == "𝟙𝟙ᵀ"
    assert to_pretty(E.transpose(E.ones(("m", 1)))) == "𝟙ᵀ"
    assert to_pretty(E.mul(E.kron(X, Y), E.transpose(E.kron(X, Y)))) == "(X ⊗ Y) (X ⊗ Y)ᵀ"
    assert to_pretty(E.hadamard(X, E.power(Y, E.MINUS_ONE))) == "X ⊘ Y"


# (text, let, pretty, LaTeX): the reader's brackets (precedence.READER), the same in both
BRACKETS = [
    ("(x - y) : x", {}, "(x − y) : x", r"\left(x - y\right) : x"),
    ("x : (A*x + y)", {}, "x : (A x + y)", r"x : \left(A x + y\right)"),
    ("(A : B) + (B : A)", {}, "A : B + B : A", "A : B + B : A"),
    ("A .* B : B", {}, "(A ⊙ B) : B", r"\left(A \odot B\right) : B"),
    ("A : B .* B", {}, "A : (B ⊙ B)", r"A : \left(B \odot B\right)"),
    ("(A .* B)*A", {}, "(A ⊙ B) A", r"\left(A \odot B\right) A"),
    ("x .* (A*y)", {}, "x ⊙ A y", r"x \odot A y"),
    ("-x .* y", {}, "−x ⊙ y", r"-x \odot y"),
    ("x + (-x) .* y", {}, "x + (−x ⊙ y)", r"x + \left(-x \odot y\right)"),
    ("kron(A, B)*C", {"A": "matrix(2, 2)", "B": "matrix(2, 2)", "C": "matrix(4, 4)"}, "(A ⊗ B) C",
     r"\left(A \otimes B\right) C"),
    ("kron(A*B, A)", {}, "A B ⊗ A", r"A B \otimes A"),
    ("2*(A : B)*A", {}, "2 (A : B) A", r"2 \left(A : B\right) A"),
    ("(A : B)*ones(n)", {}, "(A : B) 𝟙", r"\left(A : B\right) \mathbb{1}"),
    ("ones(n, n)", {}, "𝟙𝟙ᵀ", r"\mathbb{1} \mathbb{1}^{T}"),
]


@pytest.mark.parametrize("text, let, pretty, latex", BRACKETS, ids=[b[0] for b in BRACKETS])
def test_pretty_and_latex_bracket_alike(text, let, pretty, latex):
    from matcalc.printing.latex import to_latex
    e = matcalc.parse(text, {"A": "matrix(n, n)", "B": "matrix(n, n)", "x": "vector(n)", "y": "vector(n)",
                             **let}).value
    assert (to_pretty(e), to_latex(e)) == (pretty, latex)


def test_a_zero_array_is_0():
    """Its shape is the line's: ∂²L/∂x² = 0, not 0 𝟙𝟙ᵀ (the text keeps 0*ones(n, n) to paste back)."""
    d = matcalc.hessian("sum(A*x)", wrt="x")
    assert d.pretty() == "∂²L/∂x² = 0" and d.latex().endswith("= 0") and str(d.result) == "0*ones(m, m)"
    Z = E.zero(("n", "n"))
    A = E.Symbol("A", ("n", "n"))
    assert to_pretty(E.Power(Z, E.const(2), Z.shape)) == "0∘²"          # an atom: no brackets
    assert (to_pretty(E.Hadamard((A, Z), Z.shape)), to_pretty(E.Mul((A, Z), Z.shape))) == ("A ⊙ 0", "A 0")


def test_a_fraction_coefficient_is_bracketed_unless_it_has_a_glyph():
    x = E.Symbol("x", ("n", 1), "vector")
    assert to_pretty(E.mul(E.const(E.Fraction(3, 7)), x)) == "(3/7) x"
    assert to_pretty(E.mul(E.const(E.Fraction(-1, 2)), x)) == "−½ x"


def test_an_unknown_node_raises():
    class Strange(E.Expr):
        pass
    with pytest.raises(TypeError, match="pretty printer has no rule for Strange"):
        to_pretty(Strange())


# ------------------------------------------------------------- the command line

def test_cli_format_pretty():
    p = subprocess.run(CLI + ["grad", "norm2(W*h + b - y)^2", "--wrt", "W", "--format", "pretty"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "∂L/∂W = 2 (W h + b − y) hᵀ\n"


def test_cli_format_pretty_steps_and_check():
    p = subprocess.run(CLI + ["grad", "a = W*h + b; L = f(a)", "--wrt", "W", "--let", "f: function",
                              "--format", "pretty", "--steps", "--check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    block, _, report = p.stdout.partition("\n# check")
    assert block.splitlines()[-1] == "∂L/∂W = ∇f(a) hᵀ"
    assert len(_equals_columns(block)) == 1
    assert report.startswith(": passed")


def test_cli_json_carries_pretty():
    import json
    p = subprocess.run(CLI + ["grad", "x'*A*x", "--wrt", "x", "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    data = json.loads(p.stdout)
    assert data["results"]["x"]["pretty"] == "(A + Aᵀ) x"
    assert data["layout"] == "denominator"


# ------------------------------------------------------------- random expressions

from hypothesis import assume, given, note, settings  # noqa: E402

from tests.test_fuzz import LET, scalar_exprs, share  # noqa: E402
from tests.test_reading import check_derivation_reads_one_way  # noqa: E402


@settings(max_examples=share(300))
@given(scalar_exprs())
def test_random_expressions_and_gradients_print(text):
    """Every node the language makes has a pretty form with no ASCII operator left, and
    every step line and result reads one way in pretty and LaTeX (tests/test_reading.py)."""
    note(text)
    program = matcalc.parse(text, LET)
    assume(program.inputs)
    try:
        d = matcalc.grad(program, wrt=list(program.inputs)[0])
    except matcalc.MatcalcError:        # unsupported gradients are test_fuzz.py's business
        assume(False)
    for e in [program.value, *d.results.values(), *(body for _, body in d.adjoints)]:
        out = to_pretty(e)
        assert out and not ASCII_FORMS.search(out), out
    assert len(_equals_columns(d.pretty(steps=True))) == 1
    check_derivation_reads_one_way(d)
