"""Axis operations (sum/mean/softmax/logsumexp along 1 or 2), their stable code, and the
batched examples of examples/ (issue 12): each checked against finite differences and
run through every code target against the NumPy module."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.errors import ShapeError
from matcalc.numeric import Evaluator
from tests.test_targets import (TO_LIBRARY, assert_matches, call_all, convert, module, need, numpy_inputs,
                                reference)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BATCH_EXAMPLES = [("softmax_regression.mc", ["W"]), ("two_layer_batch.mc", ["W1", "b1", "W2", "b2"]),
                  ("batch_norm.mc", ["X", "gamma", "beta"]), ("layer_norm.mc", ["X", "gamma", "beta"]),
                  ("attention.mc", ["Q", "K", "V"]), ("vae_kl.mc", ["mu", "lv"]), ("svm_hinge.mc", ["W"]),
                  ("ppo.mc", ["logp"])]


def example(name, wrt):
    return matcalc.grad((EXAMPLES / name).read_text(encoding="utf-8"), wrt=wrt)


# ------------------------------------------------------------ values, shapes, derivatives

X = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])


@pytest.mark.parametrize("text, expected", [
    ("sum(X, 1)", X.sum(0, keepdims=True)),
    ("sum(X, 2)", X.sum(1, keepdims=True)),
    ("mean(X, 1)", X.mean(0, keepdims=True)),
    ("mean(X, 2)", X.mean(1, keepdims=True)),
    ("mean(X)", np.array([[X.mean()]])),
    ("softmax(X, 2)", np.exp(X) / np.exp(X).sum(1, keepdims=True)),
    ("softmax(X, 1)", np.exp(X) / np.exp(X).sum(0, keepdims=True)),
    ("logsumexp(X, 2)", np.log(np.exp(X).sum(1, keepdims=True))),
    ("logsumexp(X, 1)", np.log(np.exp(X).sum(0, keepdims=True))),
])
def test_axis_values_follow_matlab(text, expected):
    p = matcalc.parse(text, {"X": "matrix(m, n)"})
    value = Evaluator({"X": X}, dims={"m": 2, "n": 3})(p.value)
    assert value.shape == expected.shape
    assert np.allclose(value, expected)


@pytest.mark.parametrize("text, wrt", [
    ("sum(sum(A*X, 1).^2)", "X"), ("sum(exp(sum(X, 2)))", "X"), ("sum(mean(X, 1) .* mean(X, 1))", "X"),
    ("mean(X .^ 2)", "X"), ("sum(softmax(X, 2) .* B)", "X"), ("sum(softmax(X, 1) .* B)", "X"),
    ("sum(logsumexp(X, 2))", "X"), ("sum(logsumexp(X*W, 1) .^ 2)", "W"), ("mean(x)^2", "x"),
    ("sum(log(softmax(X, 2)) .* B)", "X"), ("sum(log(softmax(x)) .* y)", "x"),
])
def test_axis_derivatives(text, wrt):
    d = matcalc.grad(text, wrt=wrt)
    report = d.check()
    assert report.ok, report.message


@pytest.mark.parametrize("text", ["sum(X, 1)", "sum(X, 2)", "logsumexp(X, 2)", "softmax(X, 1)"])
def test_axis_jacobians(text):
    d = matcalc.jacobian(text, wrt="X", let={"X": "matrix(3, 2)"})
    assert d.check().ok


def test_axis_ops_on_vectors_are_the_vector_ops():
    p = matcalc.parse("sum(x, 1) + sum(x, 2)'*ones(n) + logsumexp(x, 1)", {"x": "vector(n)"})
    assert p.value.is_scalar
    assert matcalc.parse("softmax(x', 2)", {"x": "vector(n)"}).value.shape == (1, "n")


def test_text_parses_back():
    for text in ["sum(X, 1)", "softmax(X, 2)", "logsumexp(X, 1)"]:
        e = matcalc.parse(text, {"X": "matrix(m, n)"}).value
        assert str(e) == text
        assert matcalc.parse(str(e), {"X": "matrix(m, n)"}).value == e
    e = matcalc.grad("sum(logsumexp(X, 2))", wrt="X").result
    assert "softmax(X, 2)" in str(e)
    assert r"\operatorname{softmax}_{2}" in matcalc.grad("sum(logsumexp(X, 2))", wrt="X").latex()


@pytest.mark.parametrize("text, where", [("sum(X, 3)", "3"), ("softmax(X, k)", "k"), ("mean(X, 0)", "0"),
                                         ("logsumexp(X, 1.5)", "1.5")])
def test_a_wrong_axis_points_at_the_axis(text, where):
    with pytest.raises(ShapeError, match=r"1 \(down each column\) or 2 \(across each row\)") as info:
        matcalc.parse(text)
    assert text[info.value.span.start:info.value.span.end] == where


def test_a_wrong_axis_is_exit_2_with_a_caret():
    p = subprocess.run([sys.executable, "-m", "matcalc", "jacobian", "sum(X, 3)", "--wrt", "X"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "          ^" in p.stderr.replace("|", " ")


# ------------------------------------------------------------ stable code

def test_softmax_and_logsumexp_code_are_stable_for_large_logits():
    d = matcalc.grad("sum(logsumexp(Z, 2)) + sum(softmax(Z, 1) .* B)", wrt="Z")
    f = d.function()
    Z = np.array([[1000.0, 0.0, -1000.0], [999.0, 1001.0, 1000.0]])
    B = np.ones_like(Z)
    value, grad = f.value_and_grad(Z=Z, B=B)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    m = Z.max(1, keepdims=True)
    assert np.isclose(value, np.sum(m + np.log(np.exp(Z - m).sum(1, keepdims=True))) + 3)


def test_log_softmax_is_logits_minus_logsumexp():
    p = matcalc.parse("log(softmax(Z, 2))", {"Z": "matrix(m, n)"})
    assert "logsumexp(Z, 2)" in str(p.value) and "softmax" not in str(p.value).replace("logsumexp", "")
    d = example("softmax_regression.mc", ["W"])
    rng = np.random.default_rng(1)
    X = 500 * rng.standard_normal((6, 4))                # logits in the thousands
    W, Y = rng.standard_normal((4, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    value, grad = d.function().value_and_grad(X=X, W=W, Y=Y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# ------------------------------------------------------------ the examples

@pytest.mark.parametrize("name, wrt", BATCH_EXAMPLES, ids=[n for n, _ in BATCH_EXAMPLES])
def test_example_checks(name, wrt):
    d = example(name, wrt)
    assert d.program.assumed == ()
    report = d.check()
    assert report.ok, report.message


@pytest.mark.parametrize("target", ["jax", "torch", "array-api"])
@pytest.mark.parametrize("name, wrt", BATCH_EXAMPLES, ids=[n for n, _ in BATCH_EXAMPLES])
def test_example_through_every_target(name, wrt, target):
    d = example(name, wrt)
    kwargs = numpy_inputs(d)
    want = reference(d, kwargs)
    if target == "array-api":
        need("array_api_compat")
        got = call_all(d, module(d, "array-api"), kwargs, target)
        assert_matches(got, want, np.asarray, target)
        return
    to_array, to_numpy = TO_LIBRARY[target]()
    got = call_all(d, module(d, target), convert(kwargs, to_array), target)
    assert_matches(got, want, to_numpy, target)
