"""--layout denominator|numerator and layout= (matcalc/layout.py).

Denominator (the default) is the engine's own layout; numerator transposes
every gradient.  Checked against central finite differences of the value,
symbolically (the result evaluated) and through the generated code, and
through every printer; Jacobians and Hessians are the same in both layouts.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import matcalc
from matcalc.numeric import run_program, to_user
from matcalc.sampling import dimension_sizes, opaque_functions, sample_inputs

CLI = [sys.executable, "-m", "matcalc"]
MLP = "a1 = W1*x + b1\nh1 = tanh(a1)\na2 = W2*h1 + b2\nL = norm2(a2 - y)^2"

# (expression, variables, declarations): a dozen gradients with a matrix or vector variable
EXPRESSIONS = [
    ("x'*A*x", ["x"], None),
    ("norm2(W*h + b - y)^2", ["W", "b"], None),
    ("logdet(X)", ["X"], None),
    ("tr(A*X*B)", ["X"], None),
    ("det(X)", ["X"], None),
    ("sum(log(1 + exp(-y .* (X*w))))", ["w"], None),
    ("f(W*h + b)", ["W", "h"], {"f": "function"}),
    ("tr(X^-1*A)", ["X"], None),
    ("sum(exp(A*X))", ["X"], None),
    (MLP, ["W1", "W2", "b1"], None),
    ("alpha*norm2(W)^2 + x'*W*z", ["W", "z"], None),
    ("a'*X*X'*b", ["X"], None),
    ("sum(tanh(X*w) .* u) + norm1(w)", ["w", "X"], None),
    ("x'*S*x + tr(S*A)", ["S"], {"S": "symmetric(n)"}),
]
IDS = [e for e, _, _ in EXPRESSIONS]


def _point(d, seed=0):
    rng = np.random.default_rng(seed)
    dims = dimension_sizes(d.program, rng)
    return sample_inputs(d.program, rng, dims), dims


def _finite_differences(d, env, dims, name, h=1e-6):
    """∂L/∂name in the variable's own shape, entry by entry (symmetric pairs for S)."""
    functions = opaque_functions(d.program)
    value = lambda e: run_program(d.program, e, functions, dims)(d.program.output).item()
    x = env[name]
    symmetric = d.program.inputs[name].symmetric
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        if symmetric:
            step[idx[::-1]] = h
        slope = (value({**env, name: x + step}) - value({**env, name: x - step})) / (2 * h)
        out[idx] = slope / 2 if symmetric and idx[0] != idx[1] else slope
    return out


@pytest.mark.parametrize("text, wrt, let", EXPRESSIONS, ids=IDS)
def test_numerator_is_the_transpose_of_the_gradient(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let, layout="numerator")
    env, dims = _point(d)
    ev = run_program(d.program, env, opaque_functions(d.program), dims, d.adjoints)
    for name in wrt:
        numeric = _finite_differences(d, env, dims, name)
        result = d.results[name]
        assert result.shape == d.program.inputs[name].shape[::-1]
        np.testing.assert_allclose(ev(result), numeric.T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text, wrt, let", EXPRESSIONS, ids=IDS)
def test_numerator_through_the_generated_code(text, wrt, let):
    """grad_X returns X's transpose for a matrix; a vector's gradient stays 1-D."""
    d = matcalc.grad(text, wrt=wrt, let=let, layout="numerator")
    env, dims = _point(d, seed=1)
    code = d.function()
    inputs = d.program.inputs
    kwargs = {n: to_user(v, inputs[n].shape) for n, v in env.items()}
    kwargs.update(opaque_functions(d.program))
    together = code.value_and_grad(**kwargs)[1:]
    for i, name in enumerate(wrt):
        numeric = _finite_differences(d, env, dims, name)
        expected = numeric.reshape(-1) if numeric.shape[1] == 1 else numeric.T
        got = getattr(code, f"grad_{name}")(**kwargs)
        assert np.shape(got) == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together[i], got, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, wrt, let", EXPRESSIONS, ids=IDS)
def test_check_passes_in_both_layouts(text, wrt, let):
    for layout in ("denominator", "numerator"):
        report = matcalc.grad(text, wrt=wrt, let=let, layout=layout).check()
        assert report.ok, (layout, report.message)


@pytest.mark.parametrize("text, wrt", [("x'*A*x", "x"), ("norm2(W*h + b - y)^2", "W"),
                                       ("tr(A*X*B)", "X"), ("logdet(X) + tr(A*X)", "X"),
                                       ("sum(X*w)", "w")])
def test_a_result_in_the_wrong_layout_fails_the_check(text, wrt):
    right = matcalc.grad(text, wrt=wrt)
    assert right.check().ok
    wrong = replace(right, layout="numerator")          # results left in denominator layout
    assert not wrong.check().ok
    wrong = replace(matcalc.grad(text, wrt=wrt, layout="numerator"), layout="denominator")
    assert not wrong.check().ok


def test_default_is_denominator_and_unchanged():
    for text, wrt, let in EXPRESSIONS:
        plain = matcalc.grad(text, wrt=wrt, let=let)
        explicit = matcalc.grad(text, wrt=wrt, let=let, layout="denominator")
        assert plain.layout == "denominator"
        assert plain.text() == explicit.text()
        for name in wrt:
            assert plain.results[name].shape == plain.program.inputs[name].shape


# ------------------------------------------------------------- printed forms

@pytest.mark.parametrize("text, wrt, denominator, numerator", [
    ("x'*A*x", "x", "(A + A')*x", "x'*(A + A')"),
    ("norm2(W*h + b - y)^2", "W", "2*(W*h + b - y)*h'", "2*h*(W*h + b - y)'"),
    ("logdet(X)", "X", "inv(X)'", "inv(X)"),
    ("tr(A*X*B)", "X", "A'*B'", "B*A"),
    ("a'*x", "x", "a", "a'"),
    ("sum(log(1 + exp(-y .* (X*w))))", "w", "-X'*(sigmoid(-(X*w .* y)) .* y)",
     "-(sigmoid(-(X*w .* y)) .* y)'*X"),
])
def test_text_in_each_layout(text, wrt, denominator, numerator):
    assert matcalc.grad(text, wrt=wrt).text() == denominator
    assert matcalc.grad(text, wrt=wrt, layout="numerator").text() == numerator


def test_pretty_and_latex_in_numerator_layout():
    d = matcalc.grad("x'*A*x", wrt="x", layout="numerator")
    assert d.pretty() == "∂L/∂x = xᵀ (A + Aᵀ)"
    assert d.latex() == r"\frac{\partial L}{\partial x} = x^{T} \left(A + A^{T}\right)"


def test_steps_name_the_layout_on_the_identification_line():
    d = matcalc.grad("norm2(W*h + b - y)^2", wrt="W", layout="numerator")
    last = d.pretty(steps=True).splitlines()[-1]
    assert last.startswith("∂L/∂W = 2 h (W h + b − y)ᵀ")
    assert last.endswith("(numerator layout)")
    assert d.steps[-1].rule.display == "dL = G : dX  ⇒  ∂L/∂X = Gᵀ"
    text = matcalc.grad("x'*A*x", wrt="x", layout="numerator")
    from matcalc.printing.steps import steps_text
    assert steps_text(text).splitlines()[-1].split() == ["∂L/∂x", "=", "x'*(A", "+", "A')", "(numerator", "layout)"]
    assert r"\text{numerator layout}" in text.latex(steps=True)
    plain = matcalc.grad("x'*A*x", wrt="x")
    assert "layout" not in plain.pretty(steps=True) and "layout" not in steps_text(plain)


def test_the_identification_line_equals_the_transposed_gradient():
    d = matcalc.grad(MLP, wrt=["W1", "W2"], layout="numerator")
    ids = [s for s in d.steps if s.kind == "identify"]
    assert [s.after for s in ids] == [d.results["W1"], d.results["W2"]]


@pytest.mark.parametrize("command, text", [("jacobian", "tanh(W*x)"), ("jacobian", "A*X*B"),
                                           ("hessian", "x'*A*x"), ("hessian", "logdet(X)")])
def test_jacobians_and_hessians_are_the_same_in_both_layouts(command, text):
    wrt = "X" if "X" in text else "x"
    a = getattr(matcalc, command)(text, wrt=wrt)
    b = getattr(matcalc, command)(text, wrt=wrt, layout="numerator")
    assert a.text() == b.text() and a.numpy() == b.numpy()
    assert b.layout == "numerator" and b.check().ok


def test_bad_layout_in_the_api():
    with pytest.raises(matcalc.MatcalcError, match="'denominator'.*'numerator'"):
        matcalc.grad("x'*x", wrt="x", layout="row")


# ------------------------------------------------------------- the command line

def run(*args):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=60)


def test_cli_layouts():
    den = run("grad", "norm2(W*h + b - y)^2", "--wrt", "W", "--layout", "denominator")
    num = run("grad", "norm2(W*h + b - y)^2", "--wrt", "W", "--layout", "numerator", "--check")
    assert den.returncode == 0 and den.stdout == "2*(W*h + b - y)*h'\n"
    assert num.returncode == 0, num.stderr
    assert num.stdout.splitlines()[0] == "2*h*(W*h + b - y)'"
    assert "check: passed" in num.stdout


def test_cli_layout_with_pretty_steps():
    p = run("grad", "x'*A*x", "--wrt", "x", "--layout", "numerator", "--format", "pretty", "--steps")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1].split() == ["∂L/∂x", "=", "xᵀ", "(A", "+", "Aᵀ)", "(numerator", "layout)"]


def test_cli_layout_numpy_returns_the_transpose():
    p = run("grad", "tr(A*X*B)", "--wrt", "X", "--layout", "numerator", "--format", "numpy")
    ns: dict = {}
    exec(compile(p.stdout, "<generated>", "exec"), ns)
    rng = np.random.default_rng(0)
    A, X, B = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    np.testing.assert_allclose(ns["grad_X"](A=A, X=X, B=B), (A.T @ B.T).T)


@pytest.mark.parametrize("bad", ["row", "Numerator", ""])
def test_cli_bad_layout_exits_2(bad):
    p = run("grad", "x'*x", "--wrt", "x", "--layout", bad)
    assert p.returncode == 2
    assert p.stdout == ""
    assert "--layout" in p.stderr and "denominator" in p.stderr and "numerator" in p.stderr
    assert "Traceback" not in p.stderr
