"""Generated code as a numerical analyst writes it (issue 14 item 5), read off the source.

* no inverse that is only multiplied: `inv(A)*b` is a solve, `x'*inv(S)*x` is `x @ solve(S, x)`;
* no dense Kronecker product, `diag(v)` or commutation matrix on the way to a product, in
  the gradient modules of every Cookbook row and example and in every `hvp` (a Hessian
  function, `hessian_X`, returns the matrix it is asked for and may build it);
* a module's size grows linearly with the number of derivatives.
"""
from __future__ import annotations

import ast
from dataclasses import replace

import numpy as np
import pytest

import matcalc
from matcalc.errors import MatcalcError
from matcalc.jacobian import hessian_vector_product
from tests.test_cookbook import ROWS

DENSE = {"np.linalg.inv": "inv", "np.kron": "kron", "np.diag": "diag", "_commutation": "commutation"}
PRODUCTS = {"_multi_dot", "np.linalg.solve", "np.outer", "np.vdot"}


def dense_operands(source: str, matrices: set[str], functions=None) -> list[tuple[str, str, str]]:
    """(function, what, operand) for every inverse, Kronecker product, diag(v) or commutation
    matrix (a call, or a name bound to one) that is an operand of a product: @, multi_dot,
    the right side of a solve.  np.diag of a matrix parameter reads its diagonal: not dense."""
    found = []
    for fn in ast.parse(source).body:
        if not isinstance(fn, ast.FunctionDef) or (functions and fn.name not in functions):
            continue
        bound: dict[str, str] = {}

        def dense(node):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in DENSE and not (name == "np.diag" and ast.unparse(node.args[0]) in matrices):
                    return DENSE[name]
            if isinstance(node, ast.Name):
                return bound.get(node.id)
            if isinstance(node, ast.UnaryOp):
                return dense(node.operand)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):      # 2.0 * np.kron(...)
                return dense(node.left) or dense(node.right)
            return None

        for stmt in fn.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and dense(stmt.value):
                bound[stmt.targets[0].id] = dense(stmt.value)
        for node in ast.walk(fn):
            operands = []
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                operands = [node.left, node.right]
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in PRODUCTS:
                operands = list(node.args[0].elts) if isinstance(node.args[0], ast.List) else list(node.args)
                if ast.unparse(node.func) == "np.linalg.solve":
                    operands = operands[1:]
            found += [(fn.name, dense(o), ast.unparse(o)[:60]) for o in operands if dense(o)]
    return found


def _matrices(d) -> set[str]:
    return {n for n, s in d.program.inputs.items() if 1 not in s.shape}


def test_the_scanner_sees_what_it_looks_for():
    source = "def f(A, b, v):\n    _t1 = np.linalg.inv(A)\n    return _t1 @ b + np.diag(v) @ b + np.diag(A) @ b\n"
    assert [k for _, k, _ in dense_operands(source, {"A"})] == ["inv", "diag"]


# (expression, wrt, let) of the examples (examples/*.mc are read as they are)
EXAMPLES = [
    ("examples/mlp.mc", ["W1", "b1", "W2", "b2"]),
    ("examples/logistic.mc", None),
    ("examples/least_squares.mc", None),
    ("examples/gaussian.mc", None),
    ("examples/backprop.mc", None),
    ("examples/gp_likelihood.mc", ["K", "sigma2"]),
    ("examples/lambda_max.mc", ["x1", "x2"]),
    ("examples/smoothed_nuclear.mc", ["W"]),
]


def _inputs_of(text: str) -> list[str]:
    program = matcalc.parse(text)
    return [n for n, s in program.inputs.items() if n not in program.functions]


def _with_hvp(text, wrt, let=None):
    """The gradient's derivation with the Hessian module's hvp added (what hessian() gives
    hvp, without deriving the Hessian matrices: the scan reads the gradient and the hvp)."""
    d = matcalc.grad(text, wrt=wrt, let=let)
    try:
        if all(w in d.program.inputs for w in d.wrt):
            hvp, needed = hessian_vector_product(d.program, list(d.wrt), {s.name for s, _ in d.named})
            return replace(d, hvp=hvp, hvp_named=needed)
    except MatcalcError:
        pass                       # no second derivative (a row's kron of a variable, ...): the gradient alone
    return d


def _modules():
    """(label, derivation) of the gradient and hvp of every Cookbook row and example."""
    for rid, expr, wrt, let, *_ in ROWS:
        try:
            yield rid, _with_hvp(expr, wrt, let)
        except MatcalcError:
            continue               # a row the gradient does not take (kron of a variable, ...)
    for path, wrt in EXAMPLES:
        text = open(path, encoding="utf-8").read()
        yield path, _with_hvp(text, wrt or _inputs_of(text)[:2])


def test_no_dense_operand_in_any_gradient_or_hvp():
    bad, seen, hvps = [], 0, 0
    for label, d in _modules():
        try:
            source = d.numpy()
        except MatcalcError:
            continue
        seen += 1
        hvps += "def hvp(" in source
        bad += [(label, *f) for f in dense_operands(source, _matrices(d))]
    assert seen > 150 and hvps > 120
    assert not bad, "\n".join(map(str, bad))


@pytest.mark.parametrize("text, wrt, solve", [
    ("x'*inv(S)*x", "x", "np.linalg.solve(S, x)"),
    ("norm2(inv(A)*b - y)^2", "b", "np.linalg.solve(A, b)"),
    ("tr(inv(X)*A)", "X", "np.linalg.solve(X, A)"),
    ("logdet(X) + x'*inv(X)*x", "x", "np.linalg.solve(X.T, x)"),
])
def test_an_inverse_that_is_only_multiplied_is_a_solve(text, wrt, solve):
    d = matcalc.grad(text, wrt=wrt)
    source = d.numpy()
    assert solve in source and "np.linalg.inv" not in source
    assert d.check().ok


def test_an_inverse_needed_on_its_own_is_still_formed():
    source = matcalc.grad("logdet(X)", wrt="X").numpy()
    assert "np.linalg.inv(X)" in source


def _network(layers: int) -> tuple[str, list[str]]:
    lines = ["h0 = x"] + [f"h{i} = tanh(W{i}*h{i - 1})" for i in range(1, layers + 1)]
    return "\n".join(lines + [f"L = norm2(h{layers} - y)^2"]), [f"W{i}" for i in range(1, layers + 1)]


def test_module_size_is_linear_in_the_number_of_derivatives():
    sizes = {n: len(matcalc.grad(*_network(n)).numpy()) for n in (8, 16, 32)}
    assert sizes[32] / sizes[16] < 2.2 and sizes[16] / sizes[8] < 2.2, sizes


def test_a_delegating_derivative_takes_the_inputs_by_position_and_by_name():
    text, wrt = _network(6)
    f = matcalc.grad(text, wrt=wrt).function()
    rng = np.random.default_rng(0)
    args = {"x": rng.standard_normal(3), "y": rng.standard_normal(3),
            **{w: rng.standard_normal((3, 3)) / 2 for w in wrt}}
    order = list(matcalc.parse(text).inputs)
    everything = f.value_and_grad(**args)
    assert np.allclose(f.grad_W3(**args), everything[3])
    assert np.allclose(f.grad_W3(*[args[n] for n in order]), everything[3])
