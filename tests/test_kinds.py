"""Kinds from usage (syntax/kinds.py), row/column broadcasting, and the functions of
issue 12 (max min arcsin arccos arctan sinh cosh log1p expm1, pi, a dimension as a
number).  Every derivative is checked against finite differences (d.check())."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.errors import ShapeError
from matcalc.numeric import Evaluator


def kinds(program) -> dict[str, str]:
    return {n: s.kind for n, s in program.inputs.items()}


def notes(program) -> list[str]:
    return [a.note for a in program.assumed]


def run(*args):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], capture_output=True, text=True, timeout=120)
    return p


# ------------------------------------------------------------ kinds forced by use

@pytest.mark.parametrize("text, wrt, name, kind", [
    # the command: grad needs a scalar, so lam is one (the naming rule says vector)
    ("lam*norm2(w)^2 + norm2(X*w - y)^2", "w", "lam", "scalar"),
    ("l1*norm1(w) + l2*norm2(w)^2 + norm2(X*w - y)^2", "w", "l2", "scalar"),
    # the operator /: its right side is a scalar
    ("sum(x)/N", "x", "N", "scalar"),
    ("sum(Q*K'/sqrt(dk))", "Q", "dk", "scalar"),
    # an exponent is a scalar
    ("sum(x .^ p)", "x", "p", "scalar"),
])
def test_a_use_decides_the_kind(text, wrt, name, kind):
    d = matcalc.grad(text, wrt=wrt)
    assert kinds(d.program)[name] == kind
    assert not any(a.name == name for a in d.program.assumed), "a forced kind is not an assumption"
    assert d.check().ok


def test_defaults_stand_where_they_type():
    p = matcalc.parse("x'*A*x + alpha*sum(x)", scalar=True)
    assert kinds(p) == {"x": "vector", "A": "matrix", "alpha": "scalar"}
    assert p.assumed == ()       # alpha as a vector would not type (alpha*sum(x) then a vector)


def test_the_command_does_not_make_every_name_a_scalar():
    with pytest.raises(matcalc.errors.UsageError, match="grad needs a scalar"):
        matcalc.grad("A*x", wrt="x")


def test_without_the_command_the_naming_rule_stands():
    p = matcalc.parse("lam*norm2(w)^2")
    assert kinds(p)["lam"] == "vector"


def test_a_default_that_fails_gives_way_to_the_other_kind():
    # a Greek name is a vector where a scalar would not type
    p = matcalc.parse("mu'*x", scalar=True)
    assert kinds(p)["mu"] == "vector"


@pytest.mark.parametrize("text", ["x^2", "tr(x*x'*x)", "logsumexp(x')", "x : A", "x'*A*y + sum(y*A)"])
def test_uses_that_would_only_type_by_flipping_names_are_refused(text):
    with pytest.raises(ShapeError):
        matcalc.parse(text)


# ------------------------------------------------------------ the notes

def test_vae_kl_notes_the_scalar_default():
    text = "-sum(1 + lv - mu.^2 - exp(lv))/2"
    d = matcalc.grad(text, wrt="mu")
    assert kinds(d.program)["mu"] == "scalar"
    assert notes(d.program) == ["mu is taken as a scalar (a Greek name); if it is a vector, "
                                "--let 'mu: vector(n)'"]
    as_vector = matcalc.grad(text, wrt="mu", let={"mu": "vector(n)"})
    assert as_vector.program.assumed == () and as_vector.check().ok
    assert as_vector.result.shape == ("n", 1)


@pytest.mark.parametrize("text", [
    "sum(x + alpha)", "sum(alpha .* x)", "sum(exp(theta - x))", "sum(max(x, beta))",
    "sum(X ./ sigma)", "norm2(x - mu)^2",
])
def test_no_default_scalar_is_broadcast_without_a_note(text):
    """Every Greek name the naming rule makes a scalar, broadcast against an array
    where a vector would also type, is named in a note."""
    p = matcalc.parse(text, scalar=True)
    greek = [n for n, k in kinds(p).items() if k == "scalar" and n not in p.declared]
    assert greek and {a.name for a in p.assumed} == set(greek)


def test_a_scalar_product_is_no_assumption():
    assert matcalc.parse("alpha*x'*x", scalar=True).assumed == ()


def test_declaring_silences_the_note():
    p = matcalc.parse("sum(x + alpha)", {"alpha": "scalar"}, scalar=True)
    assert p.assumed == ()


def test_cli_prints_the_note_and_json_lists_it():
    p = run("grad", "-sum(1 + lv - mu.^2 - exp(lv))/2", "--wrt", "lv")
    assert p.returncode == 0
    assert "note: mu is taken as a scalar (a Greek name); if it is a vector, --let 'mu: vector(n)'" in p.stderr
    p = run("grad", "-sum(1 + lv - mu.^2 - exp(lv))/2", "--wrt", "lv", "--format", "json")
    assumed = json.loads(p.stdout)["assumed"]
    assert [a["name"] for a in assumed] == ["mu"] and assumed[0]["other"] == "vector"


# ------------------------------------------------------------ broadcasting

@pytest.mark.parametrize("text, wrt, let", [
    ("sum((X*W + b').^2)", ["W", "b"], None),                                  # a row to every row
    ("sum(tanh(X + c))", ["X", "c"], {"X": "matrix(m, n)", "c": "vector(m)"}),  # a column to every column
    ("sum(exp(q + q'))", ["q"], None),                                          # all pairs
    ("sum(exp(q' - r))", ["q", "r"], None),
    ("sum(X .* r')", ["r"], None),
    ("sum(X ./ c)", ["c", "X"], {"X": "matrix(m, n)", "c": "vector(m)"}),
    ("sum(max(X, r'))", ["X", "r"], None),
    ("sum(min(X*W, c))", ["X", "c"], {"X": "matrix(m, n)", "c": "vector(m)"}),
])
def test_broadcasting_derivatives(text, wrt, let):
    d = matcalc.grad(text, wrt=wrt, let=let)
    report = d.check()
    assert report.ok, report.message


def test_broadcast_shapes_and_values():
    p = matcalc.parse("q + q'", {"q": "vector(n)"})
    assert p.value.shape == ("n", "n")
    q = np.array([[1.0], [2.0], [3.0]])
    assert np.allclose(Evaluator({"q": q}, dims={"n": 3})(p.value), q + q.T)
    p = matcalc.parse("X + b'", {"X": "matrix(m, n)"})
    assert p.inputs["b"].shape == ("n", 1)


def test_a_column_against_the_wrong_axis_hints_the_transpose():
    p = run("grad", "sum(X*W + b)", "--wrt", "b", "--let", "X: matrix(N, d)", "--let", "W: matrix(d, k)",
            "--let", "b: vector(k)")
    assert p.returncode == 2
    assert "cannot add X*W" in p.stderr and "X*W + b'" in p.stderr and "Traceback" not in p.stderr
    assert "^^^" in p.stderr


def test_unequal_sizes_are_refused():
    with pytest.raises(ShapeError):
        matcalc.parse("x + y", {"x": "vector(2)", "y": "vector(3)"})


# ------------------------------------------------------------ functions, pi, sizes

@pytest.mark.parametrize("fn", ["arcsin", "arccos", "arctan", "sinh", "cosh", "log1p", "expm1"])
def test_new_elementwise_functions(fn):
    d = matcalc.grad(f"sum({fn}(x .* y))", wrt="x")
    assert d.check().ok
    assert matcalc.parse(d.text(), {"x": "vector(n)", "y": "vector(n)"}).value == d.result


def test_max_min_values_and_subgradients():
    p = matcalc.parse("max(x, y) - min(x, 0)")
    x, y = np.array([[1.0], [-2.0], [3.0]]), np.array([[0.5], [1.0], [4.0]])
    value = Evaluator({"x": x, "y": y}, dims={"n": 3})(p.value)
    assert np.allclose(value, np.maximum(x, y) - np.minimum(x, 0))
    d = matcalc.grad("sum(max(x, y))", wrt="x")
    assert "step" in d.text() and d.check().ok


def test_max_of_a_scalar_broadcasts():
    d = matcalc.grad("sum(max(1 - y .* (X*w), 0))", wrt="w")    # the hinge loss
    assert d.check().ok


def test_pi_is_a_number_unless_declared():
    p = matcalc.parse("pi*x'*x")
    assert set(p.inputs) == {"x"}
    assert any(isinstance(n, E.Const) and n.value == E.PI for n in E.walk(p.value))
    assert "pi" in matcalc.parse("pi*x'*x", {"pi": "vector(n)"}).inputs
    d = matcalc.grad("sum(sin(pi*x))", wrt="x")
    assert "pi" in d.text() and r"\pi" in d.latex() and "π" in d.pretty()
    assert d.check().ok


def test_a_declared_dimension_is_a_number():
    d = matcalc.grad("x: vector(n)\nL = sum(x)^2/n", wrt="x")
    assert set(d.program.inputs) == {"x"}
    assert d.check().ok
    f = d.function()
    x = np.arange(4.0)
    assert np.isclose(f.value(x=x), x.sum() ** 2 / 4)
    assert np.allclose(f.grad_x(x=x), 2 * x.sum() / 4 * np.ones(4))


def test_an_undeclared_dimension_name_is_a_variable():
    assert "n" in matcalc.parse("sum(x)/n").inputs
