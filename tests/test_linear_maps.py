"""Derivatives as linear maps: differentials and jvp_X (issue 14 items 1-3).

Every differential is checked against first differences of the value along a random
direction (d.check(), which also runs the generated jvp_X), the printers on the
examples of docs/linear-maps.md, and the other targets' jvp against NumPy's.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.cli import run

# (expression, variables, declarations): every family of operation once
DIFFERENTIALS = [
    ("inv(X)", ["X"], {}),
    ("x'*A*x", ["x"], {}),
    ("logdet(X)", ["X"], {}),
    ("det(X)", ["X"], {}),
    ("tr(A*X*B)", ["X"], {}),
    ("X*X'", ["X"], {}),
    ("X^3", ["X"], {}),
    ("kron(A, X)", ["X"], {}),
    ("sum(log(1 + exp(-y .* (X*w))))", ["w"], {}),
    ("softmax(W*x)", ["W", "x"], {}),
    ("a = W*h + b; L = sum(tanh(a))", ["W", "b"], {}),
    ("h = relu(W1*x); L = norm2(W2*h - y)^2", ["W1", "W2"], {}),
    ("S*A*S", ["S"], {"S": "symmetric(n)"}),
    ("logdet(S) - tr(S*C)", ["S"], {"S": "spd(n)"}),
    ("alpha*norm2(x)^2", ["alpha", "x"], {}),
    ("expm(X)", ["X"], {}),
    ("solve(A, X*b)", ["A", "X"], {}),
]


@pytest.mark.parametrize("text, wrt, let", DIFFERENTIALS, ids=[t for t, _, _ in DIFFERENTIALS])
def test_differential_agrees_with_finite_differences(text, wrt, let):
    d = matcalc.differential(text, wrt=wrt, let=let)
    report = d.check()
    assert report.ok, report.message
    assert all(f"jvp_{w}" in report.generated for w in wrt)      # the generated code was run too


def test_a_wrong_differential_fails_the_check():
    from dataclasses import replace
    import matcalc.expr as E
    d = matcalc.differential("inv(X)", "X")
    wrong = replace(d, results={"X": E.neg(d.result)})
    wrong.total = wrong.result
    assert not wrong.check().ok


@pytest.mark.parametrize("fmt, want", [
    ("text", "-inv(X)*dX*inv(X)"),
    ("pretty", "−X⁻¹ dX X⁻¹"),
    ("latex", r"\mathrm{d}f = -X^{-1} \mathrm{d}X X^{-1}"),
])
def test_the_differential_of_the_inverse_in_each_format(capsys, fmt, want):
    assert run(["differential", "inv(X)", "--wrt", "X", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert want in out


def test_several_variables_give_the_total_differential(capsys):
    assert run(["differential", "a = W*h + b; L = sum(tanh(a))", "--wrt", "W", "--wrt", "b"]) == 0
    out = capsys.readouterr().out.strip()
    assert "dW" in out and "db" in out
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a))", wrt=["W", "b"])
    assert set(d.results) == {"W", "b"} and "db" not in str(d.results["W"])


def test_steps_show_each_definitions_tangent(capsys):
    assert run(["differential", "a = W*h + b; L = sum(tanh(a))", "--wrt", "W", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "da = d(W*h + b)" in out and "dL = d(sum(tanh(a)))" in out and "product rule" in out


def test_latex_steps_compile_shape():
    tex = matcalc.differential("inv(X)", "X").latex(steps=True)
    assert tex.startswith(r"\begin{align*}") and r"\mathrm{d}X" in tex


def test_json_has_the_total_and_the_jvp_module(capsys):
    import json
    assert run(["differential", "x'*A*x", "--wrt", "x", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "differential" and "dx" in out["total"]["text"]
    assert "def jvp_x(x, A, dx):" in out["code"]


def test_a_claim_on_a_differential_is_bad_input(capsys):
    assert run(["differential", "inv(X)", "--wrt", "X", "--claim", "X"]) == 2
    assert "--check" in capsys.readouterr().err


def test_direction_names_never_collide_with_inputs():
    d = matcalc.differential("dX'*X*dX", "X")          # an input already called dX
    src = d.numpy()
    assert "def jvp_X(dX, X, dX_):" in src
    f = d.function()
    rng = np.random.default_rng(1)
    dX, X, V = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    h = 1e-6
    numeric = (f.value(dX, X + h * V) - f.value(dX, X - h * V)) / (2 * h)
    assert np.allclose(f.jvp_X(dX, X, V), numeric, atol=1e-6)


def test_value_and_jvp_shares_the_forward_pass():
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a))", wrt=["W", "b"])
    f = d.function()
    rng = np.random.default_rng(0)
    W, h, b, dW, db = (rng.standard_normal(s) for s in [(3, 4), 4, 3, (3, 4), 3])
    value, df = f.value_and_jvp(W, h, b, dW, db)
    assert np.isclose(value, f.value(W, h, b))
    assert np.isclose(df, f.jvp_W(W, h, b, dW) + f.jvp_b(W, h, b, db))
    assert np.isclose(df, f.jvp(W, h, b, dW, db))


@pytest.mark.parametrize("target, module", [("jax", "jax"), ("torch", "torch"), ("array-api", "array_api_compat")])
def test_jvp_in_every_target_matches_numpy(target, module):
    from tests.test_targets import need
    need(module)
    lib = need(module if module != "array_api_compat" else "numpy")
    d = matcalc.differential("a = W*h + b; L = sum(tanh(a)) + logdet(W*W')", wrt=["W", "b"])
    reference, other = d.function(), d.function(target)
    rng = np.random.default_rng(2)
    args = [rng.standard_normal(s) for s in [(3, 4), 4, 3, (3, 4), 3]]
    if target == "jax":
        lib.config.update("jax_enable_x64", True)
        conv = lib.numpy.asarray
    elif target == "torch":
        conv = lib.from_numpy
    else:
        conv = np.asarray
    got = other.jvp(*[conv(a) for a in args])
    assert np.allclose(np.asarray(got), reference.jvp(*args))
