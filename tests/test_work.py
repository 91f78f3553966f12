"""Work, not time: the generated value_and_grad does no more matrix-product work than a
hand-written form, and calls no transcendental function twice on the same argument.

Every generated array-API module runs on the counting namespace of tests/counting.py
(multiply-adds of products; transcendental calls by argument, up to transposition):

* deep-learning losses, each written as one expression and as a program with named
  intermediates, against hand-written backpropagation in this file;
* every Cookbook row (tests/test_cookbook.py) against its book formula, value and
  gradient evaluated straight from the formulas (shared nodes once);
* every example (examples/*.mc) against the value and the derivation's own result
  evaluated the same way, so that the generated code never adds products.

Sizes are distinct per dimension, so that a product done in the costlier order shows.
"""
from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

import matcalc
from matcalc.errors import MatcalcError, UnsupportedError
from matcalc.numeric import to_user
from matcalc.printing.code import python_names
from matcalc.printing.targets import ARRAY_API
from matcalc.sampling import dimension_sizes, sample_inputs

from .test_cookbook import ROWS, _closed_form, _dims_for
from .test_targets import need

need("array_api_compat")      # the counting namespace wraps its NumPy namespace (required in CI)
from .counting import evaluator_work, run_generated, run_hand  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _softplus(xp, x):
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


# ---------------------------------------------------------------- deep-learning losses
def _mlp(xp, W1, W2, X, Y):
    H = xp.tanh(W1 @ X)
    R = W2 @ H - Y
    G = 2.0 * R
    return xp.sum(R * R), ((W2.T @ G) * (1.0 - H * H)) @ X.T, G @ H.T


def _mlp_bias(xp, W1, b1, W2, b2, X, Y):
    H = xp.tanh(W1 @ X + b1[:, None])
    R = W2 @ H + b2[:, None] - Y
    D = (W2.T @ R) * (1.0 - H * H)
    return 0.5 * xp.sum(R * R), D @ X.T, xp.sum(D, axis=1), R @ H.T, xp.sum(R, axis=1)


def _logistic(xp, w, X, y):
    z = -y * (X @ w)
    return xp.sum(_softplus(xp, z)), X.T @ (-y * (0.5 + 0.5 * xp.tanh(0.5 * z)))


def _ridge(xp, w, X, y, lam):
    r = X @ w - y       # r @ r: a dot product is a product (the program spelling's r'*r)
    return r @ r + lam * (w @ w), X.T @ (2.0 * r) + 2.0 * lam * w


def _softmax_regression(xp, W, X, Y):
    Z = W @ X
    E = xp.exp(Z)
    s = xp.sum(E, axis=0)
    return xp.sum(xp.log(s)) - xp.sum(Y * Z), (E / s[None, :] - Y) @ X.T


def _relu_mlp(xp, W1, W2, X, Y):
    A = W1 @ X
    H = xp.maximum(A, 0.0)
    R = W2 @ H - Y
    return xp.sum(R * R), ((W2.T @ (2.0 * R)) * xp.astype(A > 0, A.dtype)) @ X.T, (2.0 * R) @ H.T


def _attention(xp, X, Wq, Wk, Wv, Y):
    """One head, softmax over each row: Q, K, V formed once, P's backward A ⊙ (G_A − rowsum(A ⊙ G_A))."""
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    E = xp.exp(Q @ K.T)
    P = E / xp.sum(E, axis=1)[:, None]
    R = P @ V - Y
    G = 2.0 * R
    dP = G @ V.T
    dS = P * (dP - xp.sum(dP * P, axis=1)[:, None])
    return xp.sum(R * R), X.T @ (dS @ K), X.T @ (dS.T @ Q), X.T @ (P.T @ G)


ATTENTION = {"X": "matrix(t, d)", "Wq": "matrix(d, h)", "Wk": "matrix(d, h)", "Wv": "matrix(d, p)",
             "Y": "matrix(t, p)"}
TWO_LAYER = {"W1": "matrix(h, d)", "W2": "matrix(k, h)", "X": "matrix(d, B)", "Y": "matrix(k, B)"}
LOSSES = [
    # (id, one expression, program, wrt, let, hand-written)
    ("two-layer tanh", "norm2(W2*tanh(W1*X) - Y)^2", "H1 = tanh(W1*X); L = norm2(W2*H1 - Y)^2",
     ["W1", "W2"], TWO_LAYER, _mlp),
    ("two-layer relu", "norm2(W2*relu(W1*X) - Y)^2", "A = W1*X; H = relu(A); L = norm2(W2*H - Y)^2",
     ["W1", "W2"], TWO_LAYER, _relu_mlp),
    ("mlp with biases", "norm2(W2*tanh(W1*X + b1*ones(B)') + b2*ones(B)' - Y)^2 / 2",
     "A1 = W1*X + b1*ones(B)'; H1 = tanh(A1); A2 = W2*H1 + b2*ones(B)'; L = norm2(A2 - Y)^2 / 2",
     ["W1", "b1", "W2", "b2"], {**TWO_LAYER, "b1": "vector(h)", "b2": "vector(k)"}, _mlp_bias),
    ("logistic regression", "sum(log(1 + exp(-y .* (X*w))))", "z = X*w; L = sum(log(1 + exp(-y .* z)))",
     ["w"], {"X": "matrix(B, d)", "y": "vector(B)", "w": "vector(d)"}, _logistic),
    ("ridge regression", "norm2(X*w - y)^2 + lam*norm2(w)^2", "r = X*w - y; L = r'*r + lam*w'*w",
     ["w"], {"X": "matrix(B, d)", "y": "vector(B)", "w": "vector(d)", "lam": "scalar"}, _ridge),
    ("batched softmax regression", "sum(log(ones(k)'*exp(W*X))) - sum(Y .* (W*X))",
     "Z = W*X; L = sum(log(ones(k)'*exp(Z))) - sum(Y .* Z)",
     ["W"], {"W": "matrix(k, d)", "X": "matrix(d, B)", "Y": "matrix(k, B)"}, _softmax_regression),
    # the softmax over each row written with exp and ones (bench/dl_losses.py)
    ("attention", "norm2(diag(1 ./ (exp(X*Wq*(X*Wk)')*ones(t)))*exp(X*Wq*(X*Wk)')*X*Wv - Y)^2",
     "S = X*Wq*(X*Wk)'; E = exp(S); P = diag(1 ./ (E*ones(t)))*E; L = norm2(P*X*Wv - Y)^2",
     ["Wq", "Wk", "Wv"], ATTENTION, _attention),
    ("attention (softmax)", "norm2(softmax(X*Wq*(X*Wk)', 2)*X*Wv - Y)^2",
     "S = X*Wq*(X*Wk)'; P = softmax(S, 2); L = norm2(P*X*Wv - Y)^2", ["Wq", "Wk", "Wv"], ATTENTION, _attention),
]
SIZES = {"d": 7, "h": 5, "k": 3, "B": 11, "t": 13, "p": 6}


def _inputs(d, rng, sizes=None):
    dims = dict(sizes or dimension_sizes(d.program, rng))
    env = sample_inputs(d.program, rng, dims)
    return dims, env


def _kwargs(d, env):
    """The generated functions' keyword arguments (`lambda` is `lambda_`)."""
    py = python_names(d.program.inputs, ARRAY_API.bound)
    return {py[name]: to_user(env[name], sym.shape) for name, sym in d.program.inputs.items()}


def _generated_work(d, env):
    source = d.code("array-api")
    return run_generated(source, _kwargs(d, env))


def _assert_no_repeats(work, what):
    assert not work.repeats, f"{what}: a transcendental function computed twice: {work.repeats}"


@pytest.mark.parametrize("spelling", ["expression", "program"])
@pytest.mark.parametrize("lid, expr, program, wrt, let, hand", LOSSES, ids=[r[0] for r in LOSSES])
def test_loss_does_no_more_work_than_hand_written(lid, expr, program, wrt, let, hand, spelling):
    d = matcalc.grad(expr if spelling == "expression" else program, wrt=wrt, let=let)
    dims, env = _inputs(d, np.random.default_rng(17), SIZES)
    kwargs = _kwargs(d, env)
    ours, out = _generated_work(d, env)
    theirs, expected = run_hand(hand, kwargs)
    for i, (a, b) in enumerate(zip(out, expected)):        # the same function, or the count means nothing
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=f"{lid}: output {i}")
    _assert_no_repeats(ours, f"{lid} ({spelling})")
    assert ours.macs <= theirs.macs, \
        f"{lid} ({spelling}): {ours.macs} multiply-adds in products, hand-written {theirs.macs}\n{d.code('array-api')}"


@pytest.mark.parametrize("sizes", [{"t": 13, "d": 11, "h": 3, "p": 6}, {"t": 13, "d": 3, "h": 11, "p": 6}],
                         ids=["narrow head", "narrow input"])
def test_attention_forms_the_products_its_sizes_want(sizes):
    """Which products to form once depends on the sizes: Q = X Wq and K = X Wk for a narrow
    head, Xᵀ G_S X for a narrow input.  The code holds both plans and picks by the arrays'
    sizes: never more work than the hand-written form, and less where it is not the best."""
    lid, expr, program, wrt, let, hand = next(r for r in LOSSES if r[0] == "attention")
    d = matcalc.grad(expr, wrt=wrt, let=let)
    source = d.code("array-api")
    assert "_cheapest(" in source
    dims, env = _inputs(d, np.random.default_rng(2), sizes)
    ours, _ = run_generated(source, _kwargs(d, env))
    theirs, _ = run_hand(hand, _kwargs(d, env))
    assert ours.macs <= theirs.macs
    if sizes["d"] < sizes["h"]:
        assert ours.macs < theirs.macs


def test_cheapest_plan_is_chosen_by_the_sizes():
    from matcalc.printing.plans import _chain_multiply_adds, _cheapest
    # (10×100)(100×5)(5×50): 10·100·5 + 10·5·50 = 7500, not 100·5·50 + 10·100·50 = 75000
    assert _chain_multiply_adds([(10, 100, 0), (100, 5, 0), (5, 50, 0)]) == 7500
    # diag(v) A: one pass over A
    assert _chain_multiply_adds([(20, 20, 1), (20, 30, 0)]) == 600
    # sizes by index: 4, 8, 2
    one, two = (((0, 1, 0), (1, 2, 0)),), (((0, 2, 0), (2, 2, 0)), ((2, 2, 0),))
    assert _cheapest((one, two), (4, 8, 2)) == 1 and _cheapest((two, one), (4, 8, 2)) == 0
    assert _cheapest((one, two), (4, 2, 8)) == 0         # 4·2·8 = 64 against 4·8·8 + 8·8·8


# ---------------------------------------------------------------- the Cookbook rows
# Rows whose derivation (not its code) has more products than the book's formula: the
# simplifier once did not cancel a square factor against its inverse (Aᵀ (AXB)⁻ᵀ Bᵀ = X⁻ᵀ,
# valid wherever the expression is defined).  Strict: a fix shows as XPASS, to remove here.
DERIVATION_COSTS_MORE: dict[str, str] = {}     # none since the simplifier cancels them (issue 13)


def _cookbook_params():
    out = []
    for row in ROWS:
        rid, expr, wrt, let, closed = row[:5]
        if isinstance(closed, str) and not closed.startswith("not supported"):
            marks = [pytest.mark.xfail(reason=DERIVATION_COSTS_MORE[rid], strict=True)] \
                if rid in DERIVATION_COSTS_MORE else []
            out.append(pytest.param(rid, expr, wrt, let, closed, id=rid, marks=marks))
    return out


@pytest.mark.parametrize("rid, expr, wrt, let, closed", _cookbook_params())
def test_cookbook_row_does_no_more_work_than_its_formula(rid, expr, wrt, let, closed):
    try:
        d = matcalc.grad(expr, wrt=wrt, let=let)
    except UnsupportedError as e:
        pytest.skip(f"not supported yet: {e}")
    closed_expr = _closed_form(d, let, closed)
    dims, env = _inputs(d, np.random.default_rng(3))
    ours, _ = _generated_work(d, env)
    _assert_no_repeats(ours, rid)
    book = evaluator_work([d.program.output, closed_expr], env,
                          _dims_for(closed_expr, d.program.inputs[wrt].shape, dims), d.program.definitions)
    assert ours.macs <= book.macs, f"{rid}: {ours.macs} multiply-adds in products, the book's formula {book.macs}"


# ---------------------------------------------------------------- the examples
# The variables of the examples whose comments name none.
EXAMPLE_WRT = {"gaussian": ["mu", "Sigma"], "least_squares": ["w"], "logistic": ["w"]}


def _example_params():
    out = []
    for path in sorted((ROOT / "examples").glob("*.mc")):
        comments = " ".join(line for line in path.read_text().splitlines() if line.startswith("#")).split()
        wrt = [comments[i + 1] for i, w in enumerate(comments[:-1]) if w == "--wrt"]
        out.append(pytest.param(path, wrt or EXAMPLE_WRT.get(path.stem), id=path.stem))
    return out


@pytest.mark.parametrize("path, wrt", _example_params())
def test_example_does_no_more_work_than_its_formulas(path, wrt):
    if not wrt:
        pytest.skip(f"{path.name}: a function of unknown f, no code to count")
    d = matcalc.grad(path.read_text(), wrt=wrt)
    dims, env = _inputs(d, np.random.default_rng(5))
    try:
        ours, _ = _generated_work(d, env)
    except MatcalcError as e:
        pytest.skip(f"no code: {e}")
    _assert_no_repeats(ours, path.name)
    formulas = evaluator_work([d.program.output, *d.results.values()], env, dims,
                              list(d.program.definitions) + list(d.adjoints))
    assert ours.macs <= formulas.macs, f"{path.name}: {ours.macs} multiply-adds, the formulas {formulas.macs}"


def _temporaries_used_once(source: str) -> list[str]:
    """Lines `_tN = ...` of a generated module whose name is read once or never in its function."""
    out = []
    for function in re.split(r"\ndef ", source)[1:]:
        for name in set(re.findall(r"\b(_t\d+) = ", function)):
            if len(re.findall(rf"\b{name}\b", function)) < 3:      # the assignment and two reads
                out += [line.strip() for line in function.splitlines() if line.strip().startswith(name + " =")]
    return out


def _loss_and_example_derivations():
    for lid, expr, program, wrt, let, _ in LOSSES:
        yield pytest.param(expr, wrt, let, id=f"{lid} (expression)")
        yield pytest.param(program, wrt, let, id=f"{lid} (program)")
    for p in _example_params():
        path, wrt = p.values
        if wrt and path.stem not in ("expm_fit", "smoothed_nuclear", "lambda_max"):
            yield pytest.param(path.read_text(), wrt, {}, id=path.stem)


@pytest.mark.parametrize("target", ["numpy", "jax", "torch", "array-api"])
@pytest.mark.parametrize("text, wrt, let", list(_loss_and_example_derivations()))
def test_no_temporary_is_read_only_once(text, wrt, let, target):
    """A temporary read once keeps an array alive to the end of the function for nothing: the
    batched network's `_t = X @ W1` beside `_t + b1` held a second batch×width array (1.15× the
    hand-written time, with `X @ W1 + b1` in one statement 1.09×)."""
    source = matcalc.grad(text, wrt=wrt, let=let).code(target)
    assert not _temporaries_used_once(source), "\n".join(_temporaries_used_once(source))


def _attention_example(xp, Q, K, V, G):
    """examples/attention.mc by hand: A = softmax(Q Kᵀ/√dk) row-wise, L = sum((A V) ⊙ G)."""
    c = 1.0 / math.sqrt(Q.shape[1])
    S = (c * Q) @ K.T
    E = xp.exp(S - xp.max(S, axis=1)[:, None])
    A = E / xp.sum(E, axis=1)[:, None]
    dA = G @ V.T
    dS = A * (dA - xp.sum(A * dA, axis=1)[:, None])
    return xp.sum((A @ V) * G), c * (dS @ K), c * (dS.T @ Q), A.T @ G


def test_attention_example_does_no_more_work_than_backprop():
    """The row-wise softmax's backward sums rows (A ⊙ G_A) 1, never multiplies by the ones matrix."""
    d = matcalc.grad((ROOT / "examples" / "attention.mc").read_text(), wrt=["Q", "K", "V"])
    dims, env = _inputs(d, np.random.default_rng(7), {"n": 13, "m": 11, "dk": 5, "dv": 7})
    ours, out = _generated_work(d, env)
    theirs, expected = run_hand(_attention_example, _kwargs(d, env))
    for a, b in zip(out, expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    _assert_no_repeats(ours, "attention.mc")
    assert ours.macs <= theirs.macs, f"{ours.macs} multiply-adds, backprop {theirs.macs}\n{d.code('array-api')}"


@pytest.mark.parametrize("text, wrt", [
    ("sigmoid(sum(x*z'))", "x"),                       # ones(n, m)*z: a vector, not an outer product
    ("sigmoid(sum(diag(A)*z'))", "A"),
    ("sum(exp(A*ones(m, k)) .* B)", "A"),              # row sums, broadcast
    ("sum((ones(m, n)*A) .* B)", "A"),                 # column sums, broadcast
    ("sum(sin(ones(n, n)*A*ones(m, m)))", "A"),
])
def test_products_with_the_ones_matrix_are_sums_of_the_right_shape(text, wrt):
    d = matcalc.grad(text, wrt=wrt)
    assert d.check().ok, d.code("numpy")
    dims, env = _inputs(d, np.random.default_rng(1))
    kwargs = _kwargs(d, env)
    assert np.shape(d.function().value_and_grad(**kwargs)[1]) == np.shape(kwargs[wrt])


def test_counting_sees_a_recomputed_product_and_function():
    """The counter itself: the issue's code before the fix (tanh and a product twice) is caught."""
    def before(xp, W1, W2, X, Y):
        t3 = xp.tanh(W1 @ X)
        t4 = W2 @ t3 - Y
        return xp.sum(t4 * t4), 2.0 * (((1.0 - t3 ** 2) * (W2.T @ t4)) @ X.T), 2.0 * (t4 @ xp.tanh(X.T @ W1.T))
    rng = np.random.default_rng(0)
    args = {"W1": rng.normal(size=(5, 7)), "W2": rng.normal(size=(3, 5)), "X": rng.normal(size=(7, 11)),
            "Y": rng.normal(size=(3, 11))}
    bad, _ = run_hand(before, args)
    good, _ = run_hand(_mlp, args)
    assert bad.repeats and not good.repeats
    assert bad.macs == good.macs + 5 * 7 * 11
