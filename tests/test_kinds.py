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


@pytest.mark.parametrize("text, command, name", [
    ("x'*y + c", "jacobian", "c"),                 # a scalar broadcast against the default vector c
    ("sum(exp(alpha*sum(x) - margin))", "grad", "margin"),
    ("sum(x .* max(theta, m))", "grad", "m"),      # theta a Greek scalar: both are noted
    # a column against a row is every pair: batch norm's eps as a vector made each variance a matrix
    ("C = X - mean(X, 1); L = sum(C ./ sqrt(mean(C.^2, 1) + eps))", "grad", "eps"),
])
def test_a_default_vector_broadcasting_a_scalar_is_noted(text, command, name):
    """The other way round: a lower-case name the naming rule makes a vector, against a
    scalar (not a number) or a row, where a scalar would also type, is named in a note."""
    p = matcalc.parse(text, scalar=command == "grad")
    assumed = {a.name: a for a in p.assumed}
    assert kinds(p)[name] == "vector" and assumed[name].other == "scalar"
    assert f"--let '{name}: scalar'" in assumed[name].note


@pytest.mark.parametrize("text", ["sum(max(0, x))", "sum(x + 1)", "sum(max(x, -1))", "x'*A*x"])
def test_a_number_broadcast_against_a_vector_is_no_assumption(text):
    assert matcalc.parse(text, scalar=True).assumed == ()


@pytest.mark.parametrize("text", ["clip(x, 0, 1)", "max(x, 0)", "min(1, x)"])
def test_numbers_as_bounds_are_no_assumption_without_the_command(text):
    assert matcalc.parse(text).assumed == ()


def test_a_column_broadcast_that_inference_chose_is_noted():
    """X*W + b with nothing declared reads b as a column (one entry per row): a valid
    reading, but the bias of a batch is a row, so the note gives the other spelling."""
    p = run("grad", "sum(relu(X*W + b))", "--wrt", "W")
    assert p.returncode == 0
    assert "note: b is taken as a column, one entry per row of X*W; if it has one entry per column, " \
           "write X*W + b'" in p.stderr
    assumed = json.loads(run("grad", "sum(relu(X*W + b))", "--wrt", "W", "--format", "json").stdout)["assumed"]
    assert [(a["name"], a["kind"], a["other"]) for a in assumed] == [("b", "column", "row")]
    # the row spelling, or sizes that say which one, need no note
    assert matcalc.parse("sum(relu(X*W + b'))", scalar=True).assumed == ()
    assert matcalc.parse("sum(X - c)", {"X": "matrix(m, n)", "c": "vector(m)"}, scalar=True).assumed == ()


@pytest.mark.parametrize("text, wrt, name, fixed", [
    ("-mean(y*log(sigmoid(X*w)) + (1 - y)*log(1 - sigmoid(X*w)))", "w", "y", "y .* log(sigmoid(X*w))"),
    ("sum(log(p)*y)", "p", "y", "log(p) .* y"),
    ("sum(y*log(p))", "p", "p", "y .* log(p)"),       # the first name read is the vector
])
def test_a_name_made_a_scalar_by_a_product_with_a_vector_is_noted(text, wrt, name, fixed):
    """NumPy writes the elementwise product y*log(p).  Here, with y undeclared, y*log(p)
    can only be a scalar times a vector: a use decides, and the answer (checked) is the
    derivative of another loss than the one meant, so the reading is said with the
    elementwise spelling; JSON lists it under "assumed"."""
    d = matcalc.grad(text, wrt=wrt)
    assert kinds(d.program)[name] == "scalar"
    note = next(a for a in d.program.assumed if a.name == name)
    assert (note.kind, note.other) == ("scalar", "vector")
    assert note.note.startswith(f"{name} is taken as a scalar, since ")
    assert note.note.endswith(f"if {name} is a vector, the elementwise product is {fixed}")
    assert d.check().ok
    declared = matcalc.grad(text, wrt=wrt, let={name: "scalar"})
    assert not any(a.name == name for a in declared.program.assumed)


@pytest.mark.parametrize("text, wrt", [
    ("lam*norm2(w)^2 + norm2(X*w - y)^2", "w"),     # a scalar times a scalar
    ("norm2(X*w - y)^2 + lam*w'*w", "w"),           # lam times a row: lam as a vector would be an outer product
    ("-sum(y .* log(p))", "p"),                     # spelled elementwise
    ("sum(alpha*x)", "x"),                          # a Greek scalar by the naming rule (noted as such)
])
def test_products_that_need_no_note(text, wrt):
    d = matcalc.grad(text, wrt=wrt)
    assert not [a for a in d.program.assumed if a.kind == "scalar" and a.other == "vector"
                and "product with a vector" in a.note]


def test_inferred_sizes_are_not_named_as_the_programs_names():
    """The rows of X were named n beside a scalar input n: the result 2*X'*(X*w - y)/n read
    as a division by the input, and --claim of matcalc's own result disagreed."""
    d = matcalc.grad("mean((X*w - y).^2) + n", wrt="w")
    names = set(d.program.inputs)
    assert not names & {str(s) for sym in d.program.inputs.values() for s in sym.shape}
    assert d.compare(str(d.results["w"])).agrees
    ng = matcalc.grad("1/(2*m)*sum((X*theta - y).^2)", wrt="theta", let={"theta": "vector(d)"})
    assert "m" not in map(str, ng.program.inputs["X"].shape)
    assert ng.compare(str(ng.results["theta"])).agrees


def test_a_declared_bias_as_long_as_a_row_gets_the_hint_even_with_w_undeclared():
    p = run("grad", "sum(relu(X*W + b))", "--wrt", "W", "--let", "b: vector(p)", "--let", "X: matrix(N, d)")
    assert p.returncode == 2 and "hint: a column is added to every column, a row to every row: X*W + b'" in p.stderr


@pytest.mark.parametrize("text", ["X*W + b", "x + y", "softmax(x)"])
def test_grad_of_an_array_says_so(text):
    """Where the command's scalar cannot hold, the kinds are solved without it and the
    message is about the command, not a sum of mismatched sizes."""
    p = run("grad", text, "--wrt", "x" if "x" in text else "W")
    assert p.returncode == 2 and "grad needs a scalar expression" in p.stderr, p.stderr


@pytest.mark.parametrize("text, fn, arg", [
    ("sum(softmax(X*W))", "softmax", "X*W"),
    ("-sum(Y .* log(softmax(X*W)))/N", "softmax", "X*W"),
    ("logsumexp(S)", "logsumexp", "S"),
])
def test_softmax_of_a_matrix_points_to_the_axis(text, fn, arg):
    p = run("grad", text, "--wrt", "S" if "S" in text else "W")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"{fn}({arg}) needs a vector, but {arg} is a matrix" in p.stderr
    assert f"hint: along each row: {fn}({arg}, 2); down each column: {fn}({arg}, 1)" in p.stderr
    assert "^^^" in p.stderr


def test_clip_and_row_messages_name_what_does_not_fit():
    p = run("grad", "sum(clip(x, y, z))", "--wrt", "x", "--let", "x: vector(3)", "--let", "y: vector(4)")
    assert p.returncode == 2 and "cannot clip x between y and z: a vector(3) against a vector(4)" in p.stderr
    p = run("grad", "logsumexp(x')", "--wrt", "x")
    assert p.returncode == 2 and "logsumexp(x') needs a vector, but x' is a row vector" in p.stderr
    assert "hint: along each row" not in p.stderr         # a row is not a batch


def test_clip_is_min_of_max():
    p = matcalc.parse("clip(x, lo, hi)", {"lo": "scalar", "hi": "scalar"})
    x = np.array([[-2.0], [0.3], [5.0]])
    value = Evaluator({"x": x, "lo": np.array([[0.0]]), "hi": np.array([[1.0]])}, dims={"n": 3})(p.value)
    assert np.allclose(value, np.clip(x, 0.0, 1.0))
    # PPO's clipped surrogate, typed as written (eps a Greek scalar, A the advantages)
    d = matcalc.grad("-sum(min(r .* a, clip(r, 1 - eps, 1 + eps) .* a))", wrt="r")
    assert d.check().ok
    assert matcalc.parse(d.text(), {n: str(s.kind if s.kind != "vector" else "vector(n)")
                                    for n, s in d.program.inputs.items()}).value == d.result
    assert run("grad", "sum(clip(x, 0))", "--wrt", "x").returncode == 2


@pytest.mark.parametrize("text, want", [
    ("sum(max(0, X*w))", "X'*step(X*w)"), ("sum(max(X*w, 0))", "X'*step(X*w)"),
    ("sum(min(0, X*w))", "X'*step(-X*w)"),
])
def test_max_with_zero_is_relu_in_either_order(text, want):
    d = matcalc.grad(text, wrt="w")
    assert d.text() == want and d.check().ok


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
