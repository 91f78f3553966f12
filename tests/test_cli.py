"""The command line of docs/reference.md §2, through subprocesses.

Results are compared numerically wherever the printed form is not fixed; every
error must exit 2 with a message that points at the text, never a traceback.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.numeric import run_program

MLP = "a1 = W1*x + b1\nh1 = tanh(a1)\na2 = W2*h1 + b2\nL = norm2(a2 - y)^2"
MLP_SHAPES = {"W1": (4, 3), "x": (3, 1), "b1": (4, 1), "W2": (2, 4), "b2": (2, 1), "y": (2, 1)}


def run(*args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], input=stdin if stdin is not None else b"",
                       capture_output=True, timeout=60, cwd=cwd)
    p.out = p.stdout.decode("utf-8")
    p.err = p.stderr.decode("utf-8")
    assert "Traceback" not in p.out + p.err, p.err
    return p


def kind(shape) -> str:
    r, c = shape
    return "scalar" if (r, c) == (1, 1) else f"vector({r})" if c == 1 else f"matrix({r}, {c})"


def random_env(shapes, seed=0, spd=()):
    rng = np.random.default_rng(seed)
    env = {}
    for name, (r, c) in shapes.items():
        a = rng.standard_normal((r, c))
        env[name] = a @ a.T + r * np.eye(r) if name in spd else a
    return env


def evaluate(program_text: str, shapes, env, name=None):
    """Evaluate a program (or one expression) with every input pinned to `shapes`."""
    let = {n: kind(s) for n, s in shapes.items()}
    program = matcalc.parse(program_text, let)
    ev = run_program(program, env)
    return ev.env[name] if name else ev(program.value if not program.definitions else program.output)


def results_of(output: str) -> dict[str, str]:
    """'grad_W = ...' lines (and 'g_a = ...' adjoints) of a text result."""
    out = {}
    for line in output.strip().splitlines():
        if line.startswith("#"):
            continue
        name, _, rhs = line.partition(" = ")
        out[name] = rhs
    return out


def finite_difference(program_text, shapes, env, name, h=1e-6):
    grad = np.zeros_like(env[name])
    for idx in np.ndindex(env[name].shape):
        plus, minus = dict(env), dict(env)
        plus[name] = env[name].copy(); plus[name][idx] += h
        minus[name] = env[name].copy(); minus[name][idx] -= h
        grad[idx] = (evaluate(program_text, shapes, plus).item() - evaluate(program_text, shapes, minus).item()) / (2 * h)
    return grad


def assert_points_at(err: str, token: str, line: int | None = None):
    """line/column header, the excerpt, and a caret under `token`."""
    m = re.search(r"line (\d+), column (\d+)", err)
    assert m, err
    lineno, col = int(m.group(1)), int(m.group(2))
    if line is not None:
        assert lineno == line, err
    lines = err.splitlines()
    carets = [i for i, l in enumerate(lines) if re.fullmatch(r"\s*\|\s*\^+\s*", l)]
    assert carets, f"no caret line in:\n{err}"
    i = carets[0]
    excerpt, caret = lines[i - 1], lines[i]
    assert excerpt.lstrip().startswith("|")
    start = caret.index("^")
    assert start - (caret.index("|") + 2) == col - 1, err       # the caret sits at the column
    assert excerpt[start:].startswith(token), f"caret not under {token!r}:\n{err}"


# ------------------------------------------------------------ the listed command lines

def test_grad_trace():
    p = run("grad", "tr(W*h*h'*W')", "--wrt", "W")
    assert p.returncode == 0, p.err
    assert p.out.strip() == "2*W*h*h'"
    shapes = {"W": (3, 4), "h": (4, 1)}
    env = random_env(shapes)
    got = evaluate(p.out, shapes, env)
    np.testing.assert_allclose(got, finite_difference("tr(W*h*h'*W')", shapes, env, "W"), rtol=1e-6, atol=1e-6)


def test_grad_quadratic_form():
    p = run("grad", "x'*A*x", "--wrt", "x")
    assert p.returncode == 0, p.err
    assert p.out.strip() == "(A + A')*x"
    shapes = {"A": (3, 3), "x": (3, 1)}
    env = random_env(shapes, 1)
    np.testing.assert_allclose(evaluate(p.out, shapes, env), (env["A"] + env["A"].T) @ env["x"])


def test_grad_least_squares_two_variables():
    p = run("grad", "norm2(W*h + b - y)^2", "--wrt", "W", "--wrt", "b")
    assert p.returncode == 0, p.err
    res = results_of(p.out)
    assert set(res) == {"grad_W", "grad_b"}, p.out
    shapes = {"W": (3, 4), "h": (4, 1), "b": (3, 1), "y": (3, 1)}
    env = random_env(shapes, 2)
    r = env["W"] @ env["h"] + env["b"] - env["y"]
    np.testing.assert_allclose(evaluate(res["grad_W"], shapes, env), 2 * r @ env["h"].T)
    np.testing.assert_allclose(evaluate(res["grad_b"], shapes, env), 2 * r)


def test_grad_logdet_with_let():
    p = run("grad", "logdet(X)", "--wrt", "X", "--let", "X: matrix(n,n)")
    assert p.returncode == 0, p.err
    assert p.out.strip() == "inv(X)'"
    shapes = {"X": (4, 4)}
    env = random_env(shapes, 3, spd={"X"})
    np.testing.assert_allclose(evaluate(p.out, shapes, env), np.linalg.inv(env["X"]).T)


def test_grad_logistic_with_check():
    text = "sum(log(1 + exp(-y .* (X*w))))"
    p = run("grad", text, "--wrt", "w", "--check")
    assert p.returncode == 0, p.err
    assert re.search(r"check: passed", p.out)
    result = [l for l in p.out.splitlines() if not l.startswith("#")]
    assert len(result) == 1
    shapes = {"X": (5, 3), "w": (3, 1), "y": (5, 1)}
    env = random_env(shapes, 4)
    X, w, y = env["X"], env["w"], env["y"]
    expected = -X.T @ (y / (1 + np.exp(y * (X @ w))))
    np.testing.assert_allclose(evaluate(result[0], shapes, env), expected, rtol=1e-10)


# ------------------------------------------------------------ input sources and formats

def _check_mlp_output(output: str, wrt: list[str], seed: int):
    """The printed adjoints and gradients, evaluated after the program's definitions."""
    lines = [l for l in output.strip().splitlines() if l and not l.startswith("#")]
    assert {l.partition(" = ")[0] for l in lines} >= {f"grad_{w}" for w in wrt}, output
    env = random_env(MLP_SHAPES, seed)
    definitions = "\n".join(MLP.splitlines()[:-1])
    for w in wrt:
        got = evaluate(definitions + "\n" + "\n".join(lines), MLP_SHAPES, env, name=f"grad_{w}")
        np.testing.assert_allclose(got, finite_difference(MLP, MLP_SHAPES, env, w), rtol=1e-5, atol=1e-6)


def test_program_from_file(tmp_path):
    f = tmp_path / "mlp.mc"
    f.write_text("# a two-layer network\n" + MLP + "\n", encoding="utf-8")
    p = run("grad", "-f", str(f), "--wrt", "W1", "--wrt", "b2", "--wrt", "W2")
    assert p.returncode == 0, p.err
    _check_mlp_output(p.out, ["W1", "b2", "W2"], 5)


def test_program_from_stdin():
    p = run("grad", "-", "--wrt", "b1", "--wrt", "W1", stdin=MLP.replace("\n", ";").encode())
    assert p.returncode == 0, p.err
    _check_mlp_output(p.out, ["b1", "W1"], 6)


def test_output_file(tmp_path):
    out = tmp_path / "result.txt"
    p = run("grad", "x'*A*x", "--wrt", "x", "-o", str(out))
    assert p.returncode == 0, p.err
    assert p.out == ""
    assert out.read_text(encoding="utf-8").strip() == "(A + A')*x"


def test_format_latex(tmp_path):
    p = run("grad", "x'*A*x", "--wrt", "x", "--format", "latex")
    assert p.returncode == 0, p.err
    assert r"\frac{\partial L}{\partial x}" in p.out and "A^{T}" in p.out
    assert p.out.count("{") == p.out.count("}")
    assert p.out.count(r"\left") == p.out.count(r"\right")
    out = tmp_path / "steps.tex"
    p = run("grad", "tr(W*h*h'*W')", "--wrt", "W", "--format", "latex", "--steps", "-o", str(out))
    assert p.returncode == 0, p.err
    tex = out.read_text(encoding="utf-8")
    assert tex.lstrip().startswith(r"\begin{align*}") and r"\end{align*}" in tex
    assert tex.count("{") == tex.count("}") and tex.count(r"\left") == tex.count(r"\right")


def test_format_numpy():
    p = run("grad", "x'*A*x", "--wrt", "x", "--wrt", "A", "--format", "numpy")
    assert p.returncode == 0, p.err
    tree = ast.parse(p.out)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [(a.name, a.asname) for i in imports for a in i.names] == [("numpy", "np")]
    ns: dict = {}
    exec(compile(p.out, "<cli numpy>", "exec"), ns)
    x, A = np.array([1.0, -2.0, 0.5]), np.arange(9.0).reshape(3, 3)
    assert ns["value"](x=x, A=A) == pytest.approx(x @ A @ x)
    np.testing.assert_allclose(ns["grad_x"](x=x, A=A), (A + A.T) @ x)
    np.testing.assert_allclose(ns["grad_A"](x=x, A=A), np.outer(x, x))
    L, gx, gA = ns["value_and_grad"](x=x, A=A)
    assert gx.shape == (3,) and gA.shape == (3, 3)


def test_format_json():
    p = run("grad", "norm2(W*h + b - y)^2", "--wrt", "W", "--wrt", "b", "--format", "json", "--check")
    assert p.returncode == 0, p.err
    data = json.loads(p.out)
    for key in ["inputs", "results", "steps", "code"]:
        assert key in data, key
    assert set(data["inputs"]) == {"W", "h", "b", "y"}
    W, h = data["inputs"]["W"]["shape"], data["inputs"]["h"]["shape"]
    assert W[1] == h[0] and h[1] == 1
    assert set(data["results"]) == {"W", "b"}
    assert data["results"]["W"]["shape"] == W
    assert data["steps"] and all("rule" in s for s in data["steps"])
    assert data["check"]["ok"] is True
    shapes = {"W": (3, 4), "h": (4, 1), "b": (3, 1), "y": (3, 1)}
    env = random_env(shapes, 7)
    r = env["W"] @ env["h"] + env["b"] - env["y"]
    np.testing.assert_allclose(evaluate(data["results"]["W"]["text"], shapes, env), 2 * r @ env["h"].T)
    ns: dict = {}
    exec(compile(data["code"], "<json code>", "exec"), ns)
    user = {k: (v.reshape(-1) if v.shape[1] == 1 else v) for k, v in env.items()}
    np.testing.assert_allclose(ns["grad_b"](**user), 2 * r.reshape(-1))


def test_steps_text():
    p = run("grad", "sum(A*x)", "--wrt", "x", "--steps")
    assert p.returncode == 0, p.err
    assert len(p.out.strip().splitlines()) >= 3
    assert "A'*ones" in p.out


def test_check_exit_status_1_when_nothing_can_be_verified():
    p = run("grad", "sum(log(-exp(x)))", "--wrt", "x", "--check")
    assert p.returncode == 1, (p.returncode, p.out, p.err)
    assert "check" in p.out


# ------------------------------------------------------------ errors: exit 2, pointing at the text

def assert_bad_input(p):
    assert p.returncode == 2, (p.returncode, p.out, p.err)
    assert p.out == "", "nothing on stdout for bad input"
    assert p.err.strip()


def test_parse_error():
    p = run("grad", "x'*x +* y", "--wrt", "x")
    assert_bad_input(p)
    assert "syntax error" in p.err
    assert_points_at(p.err, "*", line=1)


def test_parse_error_on_a_later_line(tmp_path):
    f = tmp_path / "bad.mc"
    f.write_text("a = A*x\nb = a .* a\nL = sum(b) +\n", encoding="utf-8")
    p = run("grad", "-f", str(f), "--wrt", "x")
    assert_bad_input(p)
    assert str(f) in p.err or "bad.mc" in p.err
    assert re.search(r"line [34], column", p.err), p.err


def test_unknown_function_points_at_the_name():
    p = run("grad", "sum(tahn(x))", "--wrt", "x")
    assert_bad_input(p)
    assert "unknown function tahn" in p.err
    assert_points_at(p.err, "tahn")
    assert "did you mean tanh" in p.err or "did you mean tan" in p.err


def test_unknown_function_tarce_suggests_tr():
    p = run("grad", "tarce(X)", "--wrt", "X")
    assert_bad_input(p)
    assert_points_at(p.err, "tarce")
    assert re.search(r"did you mean .*\btr\b", p.err), p.err


@pytest.mark.parametrize("text, caret, hint", [
    ("sum(x**2)", "*", "a power is written ^ (A^2, a matrix power) or .^ (x.^2, entry by entry)"),
    ("sum(X*W, axis=1)", "=", "an axis is the second argument, numbered as in MATLAB: sum(X, 1) down each column"),
    ("sum(softmax(Z, dim=2))", "=", "sum(X, 2) along each row"),
    ("sum(log_softmax(Z, 2))", "log_softmax", "write the composition: log(softmax(...))"),
])
def test_numpy_and_pytorch_habits_get_the_languages_spelling(text, caret, hint):
    """Found by a new user: `**`, `axis=` and log_softmax got "expected '(', '-', a name,
    a number", nothing, and "did you mean softmax?"."""
    p = run("grad", text, "--wrt", "Z" if "Z" in text else ("W" if "W" in text else "x"))
    assert_bad_input(p)
    assert_points_at(p.err, caret)
    assert hint in p.err, p.err


def test_an_output_format_as_an_option_gets_the_format_option():
    p = run("grad", "x'*x", "--wrt", "x", "--json")
    assert p.returncode == 2 and "unrecognized arguments: --json (the output format is --format json)" in p.err


def test_shape_mismatch_names_both_operands():
    # (a column and a row broadcast to the matrix of all pairs: A*x + y' is valid)
    p = run("grad", "sum(A*x + y')", "--wrt", "x", "--let", "A: matrix(m, n)", "--let", "y: vector(q)",
            "--let", "x: matrix(n, p)")
    assert_bad_input(p)
    assert "shape error" in p.err
    assert "A*x" in p.err and "y'" in p.err
    assert "matrix(m, p)" in p.err and "row vector(q)" in p.err
    assert_points_at(p.err, "A*x + y'")


def test_shape_mismatch_in_a_file_reports_the_line(tmp_path):
    f = tmp_path / "p.mc"
    f.write_text("W: matrix(m, n)\ny: vector(n)\na = W*x\nL = sum(a + y)\n", encoding="utf-8")
    p = run("grad", "-f", str(f), "--wrt", "x")
    assert_bad_input(p)
    assert_points_at(p.err, "a + y", line=4)


def test_shape_mismatch_undeclared():
    p = run("grad", "A*x + y'", "--wrt", "x")
    assert_bad_input(p)
    assert "A*x" in p.err and "y'" in p.err
    assert_points_at(p.err, "A*x")


def test_grad_of_a_non_scalar():
    p = run("grad", "A*x", "--wrt", "x")
    assert_bad_input(p)
    assert "jacobian" in p.err.lower()
    assert "vector" in p.err


def test_unknown_wrt_name():
    p = run("grad", "x'*A*x", "--wrt", "z")
    assert_bad_input(p)
    assert "z" in p.err and "no z" in p.err
    p = run("grad", "x'*A*x", "--wrt", "xx")
    assert_bad_input(p)
    assert "did you mean x" in p.err


def test_usage_errors_point_at_the_text():
    p = run("grad", "A*x", "--wrt", "x")
    assert_bad_input(p)
    assert_points_at(p.err, "A*x")
    p = run("grad", "x'*A*x", "--wrt", "z")
    assert_bad_input(p)
    assert re.search(r"line \d+, column \d+", p.err) and "^" in p.err


def test_bad_let():
    p = run("grad", "x'*A*x", "--wrt", "x", "--let", "A: matrx(n, n)")
    assert_bad_input(p)
    assert "--let" in p.err
    assert_points_at(p.err, "A: matrx")
    p = run("grad", "x'*A*x", "--wrt", "x", "--let", "A: matrix(n, 0)")
    assert_bad_input(p)
    assert_points_at(p.err, "0")


def test_non_utf8_stdin():
    p = run("grad", "-", "--wrt", "x", stdin=b"x'*\xff*x")
    assert_bad_input(p)
    assert "UTF-8" in p.err
    assert re.search(r"line 1, column \d+", p.err) and "^" in p.err


def test_non_utf8_stdin_excerpt():
    p = run("grad", "-", "--wrt", "x", stdin=b"x'*\xff*x")
    assert "<stdin>, line 1, column 4" in p.err
    assert_points_at(p.err, "")
    assert "| x'*" in p.err


@pytest.mark.parametrize("how", ["argument", "stdin", "comment-only"])
def test_empty_input(how):
    if how == "argument":
        p = run("grad", "", "--wrt", "x")
    elif how == "stdin":
        p = run("grad", "-", "--wrt", "x", stdin=b"")
    else:
        p = run("grad", "-", "--wrt", "x", stdin=b"# nothing here\n\n")
    assert_bad_input(p)
    assert "no expression" in p.err
    assert re.search(r"line \d+, column \d+", p.err) and "^" in p.err


def test_unsupported_is_bad_input_not_a_crash():
    p = run("grad", "sum(grad_f(x))", "--wrt", "x", "--let", "f: function")
    assert_bad_input(p)
    assert "not supported" in p.err and "grad_f" in p.err


def test_usage_mistakes_exit_2():
    p = run("grad", "x'*x")                     # no --wrt
    assert p.returncode == 2 and "--wrt" in p.err
    p = run("grad", "--wrt", "x")               # no expression
    assert p.returncode == 2 and p.out == ""
    p = run("grad", "x'*x", "--wrt", "x", "--format", "pdf")
    assert p.returncode == 2


def test_zero_derivative_of_a_scalar():
    p = run("grad", "sign(alpha)*beta", "--wrt", "alpha")
    assert p.returncode == 0, p.err
    assert p.out.strip() == "0"


def test_check_fails_on_nan_gradient():
    p = run("grad", "sum(sqrt(relu(x)))", "--wrt", "x", "--check")
    assert p.returncode == 1, p.out
    assert "passed" not in p.out


def test_cancelling_quotient_inside_a_function():
    p = run("grad", "tanh(beta / beta)", "--wrt", "beta")
    assert p.returncode == 0, p.err
    assert p.out.strip() == "0"


def test_check_with_an_unsized_identity_is_not_an_internal_error():
    p = run("grad", "tr(alpha*I)", "--wrt", "alpha", "--check")
    assert p.returncode in (0, 1, 2), p.err
    assert "internal error" not in p.err
