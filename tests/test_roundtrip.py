"""parse(print(e)) == e: hand-written expressions, printed gradients, and random
well-typed expressions from hypothesis; LaTeX output is well formed."""
from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc import expr as E
from matcalc.errors import ShapeError
from matcalc.check import dimension_sizes, opaque_functions, sample_inputs
from matcalc.numeric import Evaluator
from matcalc.printing.latex import to_latex

# Declarations used for every hand-written expression (names not declared here
# take their default kinds).
LET = {
    "A": "matrix(n, n)", "B": "matrix(n, n)", "C": "matrix(n, m)", "D": "matrix(m, n)",
    "X": "matrix(n, n)", "S": "symmetric(n)", "x": "vector(n)", "y": "vector(n)",
    "z": "vector(m)", "alpha": "scalar", "beta": "scalar", "lambda": "scalar",
    "f": "function",
}

HAND = [
    # products, sums, negation
    "A*B", "A @ B", "A*B*x", "alpha*A", "A*alpha", "x'*A*y", "A + B", "A - B", "-A", "-A + B",
    "A - (B - X)", "A - -B", "-(A + B)*x", "x - 2*y", "alpha - beta*2", "(A + B)*(A - B)",
    "C*D", "D*C*z", "C*D*x", "x*y'", "-x'*y",
    # elementwise
    "A .* B", "A ⊙ B", "x ./ y", "A / alpha", "A / 2", "x .^ 3", "x .^ -1", "alpha ^ beta",
    "alpha^-2", "-x.^2", "(-x).^2", "x .^ (1/2)", "2^alpha", "x.^alpha .* y",
    # matrix powers, transpose
    "X^2", "X^3", "X^-1", "X^-2", "X^0 + A", "A'", "A.T", "(A*B)'", "A''", "x'", "(x + y)'*A",
    # Frobenius, Kronecker
    "A : B", "A : B + X", "(A : B) * alpha", "x : y", "kron(A, B)", "kron(x, y)", "kron(A, C)'",
    # named functions
    "tr(A)", "det(X)", "logdet(X)", "inv(X)", "inv(A*B)", "diag(x)", "diag(A)", "diag(diag(x))",
    "vec(A)", "vec(C)'*vec(C)", "sum(A)", "sum(x)", "norm1(x)", "norm2(A)", "norm2(A*x - y)^2",
    "tr(S*X)", "logdet(S)",
    # elementwise functions
    "exp(A)", "log(x)", "sin(x)", "cos(A)", "tan(x)", "tanh(A*x)", "sqrt(x)", "abs(A)",
    "sign(x)", "sigmoid(x)", "relu(A*x + y)", "softplus(x)", "step(x)",
    "softmax(A*x)", "logsumexp(x)", "log(1 + exp(-y .* (A*x)))", "sum(log(1 + exp(x)))",
    # constants
    "A*I", "A + I", "2*I - A", "0*A + B", "x + 0", "x + ones", "ones'*x", "A*ones", "x + 1",
    "0.5*x", "1e-3*x", "2.5e10*alpha", "0.125", "1/3*alpha", "alpha/3", "-1.5*A",
    # opaque functions and Greek names
    "f(A*x)", "f(alpha)", "lambda*norm2(A)^2 + alpha", "grad_f(A*x)", "sum(grad_f(x))",
]


def _roundtrip(text: str, let=LET):
    e = matcalc.parse(text, let).value
    printed = str(e)
    again = matcalc.parse(printed, let).value
    return e, printed, again


def test_hand_list_is_large_and_covers_section_1():
    assert len(HAND) >= 40
    joined = " ".join(HAND)
    for token in ["*", "@", "+", "-", ".*", "⊙", "./", "/", ".^", "^", "'", ".T", ":", "kron(",
                  "tr(", "det(", "logdet(", "inv(", "diag(", "vec(", "sum(", "norm1(", "norm2(",
                  "exp(", "log(", "sin(", "cos(", "tan(", "tanh(", "sqrt(", "abs(", "sign(",
                  "sigmoid(", "relu(", "softplus(", "softmax(", "logsumexp(", "I", "0", "ones"]:
        assert token in joined, token


@pytest.mark.parametrize("text", HAND)
def test_roundtrip_hand_written(text):
    e, printed, again = _roundtrip(text)
    assert again == e, f"{text!r} printed as {printed!r} parses back as {str(again)!r}"
    assert str(again) == printed


@pytest.mark.parametrize("text", HAND)
def test_printed_text_evaluates_like_the_original(text):
    """A round trip that drops meaning would show up numerically too."""
    program = matcalc.parse(text, LET)
    e = program.value
    again = matcalc.parse(str(e), LET).value
    rng = np.random.default_rng(0)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    fns = opaque_functions(program)
    a = Evaluator(env, fns, dims)(e)
    b = Evaluator(env, fns, dims)(again)
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- precedence

@pytest.mark.parametrize("text, same_as", [
    ("-x.^2", "-(x.^2)"),
    ("alpha^-beta^2", "alpha^(-(beta^2))"),
    ("alpha^beta^2", "alpha^(beta^2)"),
    ("A*B'", "A*(B')"),
    ("A + B*X", "A + (B*X)"),
    ("A : B + X", "A : (B + X)"),
    ("x .* y + x", "(x .* y) + x"),
    ("A*B .* X", "(A*B) .* X"),
    ("A - B - X", "(A - B) - X"),
    ("x ./ y ./ y", "(x ./ y) ./ y"),
    ("-A'", "-(A')"),
    ("A.T'", "(A')'"),
])
def test_precedence(text, same_as):
    a = matcalc.parse(text, LET).value
    b = matcalc.parse(same_as, LET).value
    assert a == b


# --------------------------------------------------------------- gradients

GRADIENTS = [
    ("x'*A*x", "x", None),
    ("tr(W*h*h'*W')", "W", None),
    ("norm2(W*h + b - y)^2", "W", None),
    ("norm2(W*h + b - y)^2", "b", None),
    ("logdet(X)", "X", {"X": "matrix(n, n)"}),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", None),
    ("det(X)", "X", None),
    ("tr(inv(X)*A)", "X", None),
    ("x'*inv(X)*x", "X", None),
    ("sum(exp(A*x))", "x", None),
    ("norm1(A*x - y)", "x", None),
    ("sum(tanh(W*x) .* y)", "W", None),
    ("sum(sigmoid(W*x))", "x", None),
    ("logsumexp(A*x)", "x", None),
    ("y'*softmax(A*x)", "x", None),
    ("tr(X^3)", "X", None),
    ("alpha^2*norm2(x)^2", "alpha", None),
    ("sum(sqrt(x .* y))", "x", None),
    ("x'*S*x", "S", {"S": "symmetric(n)"}),
    ("tr(A*X'*B*X)", "X", None),
    ("sum(x ./ y)", "y", None),
    ("f(W*h + b)", "W", {"f": "function"}),
    ("sum(relu(W*x + b))", "b", None),
    ("lambda*norm2(W)^2 + sum(softplus(W*x))", "W", None),
    ("sum(diag(x)*A)", "x", None),
    ("(A*x) : (B*x)", "x", None),
]


def _pinning(program) -> dict[str, str]:
    """Declarations that fix every input's kind and shape."""
    out = {}
    for name, sym in program.inputs.items():
        r, c = sym.shape
        if sym.symmetric:
            out[name] = f"symmetric({r})"
        elif (r, c) == (1, 1):
            out[name] = "scalar"
        elif c == 1:
            out[name] = f"vector({r})"
        else:
            out[name] = f"matrix({r}, {c})"
    for f in program.functions:
        out[f] = "function"
    return out


@pytest.mark.parametrize("text, wrt, let", GRADIENTS, ids=[f"{t}:{w}" for t, w, _ in GRADIENTS])
def test_roundtrip_printed_gradient(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let)
    assert d.check().ok
    printed = str(d.result)
    again = matcalc.parse(printed, _pinning(d.program)).value
    assert again == d.result, f"{printed!r} parses back as {str(again)!r}"


def test_roundtrip_printed_gradient_with_row_of_ones():
    """A free-standing `ones` had no size of its own in text, so the trailing ones of
    exp(ones'*x)*ones parsed back with a fresh dimension; it prints as ones(n) now."""
    d = matcalc.grad("exp(ones'*x)", wrt="x")
    assert d.check().ok
    printed = str(d.result)
    again = matcalc.parse(printed, _pinning(d.program)).value
    assert again == d.result, f"{printed!r} parses back as {str(again)!r}"


@pytest.mark.parametrize("text, shape", [
    pytest.param("alpha / (ones'*y)", (1, 1), id="divide"),
    pytest.param("(ones'*y)^2", (1, 1), id="power"),
    pytest.param("(ones'*y)*A", ("n", "m"), id="scale-a-matrix"),
])
def test_ones_transpose_times_vector_is_a_scalar(text, shape):
    program = matcalc.parse(text)
    assert program.value.shape == shape or (shape != (1, 1) and program.inputs["A"].shape[0] != 1)
    assert program.value.is_scalar == (shape == (1, 1))


def test_gradient_roundtrip_list_is_large_enough():
    assert len(GRADIENTS) >= 20


# --------------------------------------------------------------- hypothesis

DECLS = {"f": "function", "alpha": "scalar", "beta": "scalar", "x": "vector(n)", "y": "vector(n)",
         "A": "matrix(n, n)", "B": "matrix(n, n)"}

NUMBERS = st.sampled_from(["2", "0.5", "3", "1", "0", "1.25", "10", "1e-2", "0.1", "2.5e3"])


@functools.lru_cache(maxsize=None)
def _expr(kind: str, depth: int):
    """Text of a well-typed expression of `kind` (scalar | vector | matrix)."""
    leaves = {"scalar": st.one_of(st.sampled_from(["alpha", "beta"]), NUMBERS),
              "vector": st.sampled_from(["x", "y"]),
              "matrix": st.sampled_from(["A", "B", "A", "B", "I"])}[kind]
    if depth <= 0:
        return leaves
    s, v, m = (_expr(k, depth - 1) for k in ("scalar", "vector", "matrix"))
    same = _expr(kind, depth - 1)
    AB = st.sampled_from(["A", "B", "A'", "A*B", "exp(B)"])    # vec() needs a size the context fixes
    paren = lambda t: t if re.fullmatch(r"[A-Za-z0-9_.]+", t) else f"({t})"
    binary = lambda op: st.tuples(same, same).map(lambda ab: f"{paren(ab[0])} {op} {paren(ab[1])}")
    options = [leaves,
               binary("+"), binary("-"),
               same.map(lambda a: f"-{paren(a)}"),
               same.map(lambda a: f"({a})"),
               st.tuples(s, same).map(lambda ab: f"{paren(ab[0])}*{paren(ab[1])}"),
               same.map(lambda a: f"exp({a})"), same.map(lambda a: f"tanh({a})"),
               same.map(lambda a: f"sin({a})"), same.map(lambda a: f"abs({a})")]
    if kind == "scalar":
        options += [binary("*"), binary("/"),
                    st.tuples(v, v).map(lambda ab: f"{paren(ab[0])}'*{paren(ab[1])}"),
                    st.tuples(v, m, v).map(lambda t: f"{paren(t[0])}'*{paren(t[1])}*{paren(t[2])}"),
                    m.map(lambda a: f"tr({a})"), st.one_of(v, m).map(lambda a: f"sum({a})"),
                    st.one_of(v, m).map(lambda a: f"norm2({a})"), v.map(lambda a: f"norm1({a})"),
                    v.map(lambda a: f"logsumexp({a})"), m.map(lambda a: f"det({a})"),
                    st.tuples(m, m).map(lambda ab: f"{paren(ab[0])} : {paren(ab[1])}"),
                    st.tuples(same, st.sampled_from(["2", "3", "-1"])).map(lambda t: f"{paren(t[0])}^{t[1]}"),
                    st.tuples(v, v).map(lambda ab: f"{paren(ab[0])} : {paren(ab[1])}"),
                    st.tuples(m, m).map(lambda ab: f"sum(kron({ab[0]}, {ab[1]}))"),
                    st.tuples(AB, AB).map(lambda ab: f"vec({ab[0]})'*vec({ab[1]})"),
                    v.map(lambda a: f"ones'*{paren(a)}"), m.map(lambda a: f"logdet({a})"),
                    same.map(lambda a: f"f({a})"), v.map(lambda a: f"f({a})"),
                    same.map(lambda a: f"log({a})"), same.map(lambda a: f"sqrt({a})")]
    if kind == "vector":
        options += [st.tuples(m, same).map(lambda ab: f"{paren(ab[0])}*{paren(ab[1])}"),
                    binary(".*"), binary("⊙"), binary("./"),
                    st.tuples(same, s).map(lambda ab: f"{paren(ab[0])}/{paren(ab[1])}"),
                    st.tuples(same, st.sampled_from(["2", "3", "0.5"])).map(lambda t: f"{paren(t[0])}.^{t[1]}"),
                    same.map(lambda a: f"softmax({a})"), m.map(lambda a: f"diag({a})"),
                    st.tuples(same, s).map(lambda ab: f"{paren(ab[0])} + {paren(ab[1])}"),
                    st.tuples(same, s).map(lambda ab: f"{paren(ab[0])} .^ {paren(ab[1])}"),
                    same.map(lambda a: f"grad_f({a})"), same.map(lambda a: f"sigmoid({a})"),
                    same.map(lambda a: f"relu({a})"), same.map(lambda a: f"{paren(a)} - 1"),
                    st.tuples(m, same).map(lambda ab: f"{paren(ab[0])}.T*{paren(ab[1])}")]
    if kind == "matrix":
        options += [binary("*"), binary("@"), binary(".*"),
                    same.map(lambda a: f"{paren(a)}'"), same.map(lambda a: f"{paren(a)}.T"),
                    same.map(lambda a: f"inv({a})"), v.map(lambda a: f"diag({a})"),
                    st.tuples(v, v).map(lambda ab: f"{paren(ab[0])}*{paren(ab[1])}'"),
                    st.tuples(same, st.sampled_from(["2", "3", "-1", "-2"])).map(lambda t: f"{paren(t[0])}^{t[1]}"),
                    st.tuples(v, v).map(lambda ab: f"diag({ab[0]})*diag({ab[1]})"),
                    same.map(lambda a: f"{paren(a)} + ones*ones'"), same.map(lambda a: f"{paren(a)} + 0"),
                    st.tuples(same, same).map(lambda ab: f"{paren(ab[0])} ./ {paren(ab[1])}")]
    return st.one_of(*options)


# ---- groupings the printer once flattened: scalar-valued products and
# broadcast sums must print so that they parse back as the same tree.

@pytest.mark.parametrize("text", [
    pytest.param("x'*(x*alpha)", id="trailing-scalar"),
    pytest.param("x'*(x/alpha)", id="trailing-division"),
    pytest.param("0.5*x'*y", id="half"),
    pytest.param("1.25*x'*A*y", id="fraction"),
    pytest.param("x + (alpha + beta)", id="broadcast-sum"),
    pytest.param("exp(x) + (1 + 2)", id="broadcast-constant-sum"),
])
def test_roundtrip_scalar_groupings(text):
    e, printed, again = _roundtrip(text, DECLS)
    assert again == e, f"{text!r} printed as {printed!r} parses back as {str(again)!r}"


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.one_of(_expr("scalar", 3), _expr("vector", 3), _expr("matrix", 3)))
def test_roundtrip_random(text):
    e = matcalc.parse(text, DECLS).value
    printed = str(e)
    again = matcalc.parse(printed, DECLS).value
    assert again == e, f"{text!r} printed as {printed!r} parses back as {str(again)!r}"
    latex = to_latex(e)
    assert_well_formed_latex(latex)


# --------------------------------------------------------------- LaTeX

def assert_well_formed_latex(s: str) -> None:
    """Balanced {}, and \\left/\\right properly paired and nested with braces."""
    stack: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith(r"\left", i) and not s[i + 5:i + 6].isalpha():
            stack.append("left")
            i += 5
            continue
        if s.startswith(r"\right", i) and not s[i + 6:i + 7].isalpha():
            assert stack and stack[-1] == "left", f"unmatched \\right at {i}: {s}"
            stack.pop()
            i += 6
            continue
        if s.startswith("\\{", i) or s.startswith("\\}", i):
            i += 2
            continue
        if s[i] == "{":
            stack.append("{")
        elif s[i] == "}":
            assert stack and stack[-1] == "{", f"unbalanced '}}' at {i}: {s}"
            stack.pop()
        i += 1
    assert not stack, f"unclosed {stack} in {s}"


def test_latex_checker_rejects_bad_latex():
    for bad in ["{", "}", r"\left( x", r"x \right)", r"\left( {x \right) }", "{{}"]:
        with pytest.raises(AssertionError):
            assert_well_formed_latex(bad)
    assert_well_formed_latex(r"\left\|x^{T}\right\|_{2} + \frac{1}{2}")


@pytest.mark.parametrize("text", HAND)
def test_latex_well_formed_hand_written(text):
    latex = to_latex(matcalc.parse(text, LET).value)
    assert latex.strip()
    assert_well_formed_latex(latex)


@pytest.mark.parametrize("text, wrt, let", GRADIENTS, ids=[f"{t}:{w}" for t, w, _ in GRADIENTS])
def test_latex_of_derivations_well_formed(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let)
    assert_well_formed_latex(d.latex())
    steps = d.latex(steps=True)
    assert_well_formed_latex(steps)
    assert steps.startswith(r"\begin{align*}") and steps.rstrip().endswith(r"\end{align*}")


@pytest.mark.parametrize("text, expected", [
    ("A'", "A^{T}"),
    ("A .* B", r"A \odot B"),
    ("kron(A, B)", r"A \otimes B"),
    ("kron(A, B)*kron(A, B)", r"\left(A \otimes B\right) \left(A \otimes B\right)"),
    ("tr(A)", r"\operatorname{tr}\left(A\right)"),
    ("inv(X)", "X^{-1}"),
    ("alpha*x", r"\alpha x"),
])
def test_latex_forms(text, expected):
    assert to_latex(matcalc.parse(text, LET).value) == expected


@pytest.mark.parametrize("text, let, value", [
    ("sum(ones(3))", {}, 3.0),
    ("tr(I(4)) + sum(ones(2, 5))", {}, 14.0),
    ("x'*ones(n)", {"x": "vector(n)"}, None),
    ("sum(X .* ones(m, n))", {"X": "matrix(m, n)"}, None),
])
def test_sized_constants(text, let, value):
    """I(n), ones(n), ones(m, n): the identity and all-ones with their sizes given."""
    from matcalc.numeric import run_program
    program = matcalc.parse(text, let)
    env = {"x": np.arange(1.0, 4.0).reshape(3, 1), "X": np.ones((2, 3))}
    got = float(run_program(program, {k: v for k, v in env.items() if k in program.inputs}, {},
                            {"n": 3, "m": 2})(program.output).item())
    assert got == (value if value is not None else 6.0)


@pytest.mark.parametrize("text, let, message", [
    ("x + ones(3)", {"x": "vector(4)"}, "3"),
    ("ones(m, n, k)", {}, "ones() takes 1 or 2 dimensions"),
    ("I(x + 1)", {}, "takes dimensions"),
    ("I(2, 3)", {}, "I() takes 1 dimension"),
])
def test_sized_constants_bad_input(text, let, message):
    with pytest.raises(matcalc.MatcalcError, match=re.escape(message)):
        matcalc.parse(text, let)
