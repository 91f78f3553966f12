"""Jacobians and Hessians: matcalc.jacobian / matcalc.hessian.

Layout under test (docs/reference.md §1, §4): the Jacobian of f (m entries) with
respect to x (n entries) is m × n, d vec(f) = J d vec(x), vec column-major; a
Hessian of a scalar L is the Jacobian of its gradient (n × n; pq × pq in vec
order for a p × q matrix).

Every case is checked numerically, never by string alone:
  1. d.check().ok, matcalc's own finite-difference verification;
  2. d.result evaluated with matcalc.numeric (Evaluator via run_program) at
     matcalc's sampled inputs, against this file's own central differences of
     an independent NumPy implementation of the function (Jacobians) or of its
     gradient (Hessians), and against an independent closed form where one is
     short enough to write;
  3. the exact numeric shape, len(f) × len(x);
  4. Hessians symmetric to rounding;
  5. the generated NumPy module (d.function()) called by keyword.
Bugs found are kept as strict xfails whose reason starts with "BUG:".
"""
from __future__ import annotations

import functools
import keyword
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import dimension_sizes, opaque_functions, sample_inputs
from matcalc.errors import MatcalcError, NameError_, UnsupportedError, UsageError
from matcalc.numeric import Evaluator, run_program, to_user

FD_STEP = 1e-5
TOL = 1e-6            # relative to max(1, |reference|)
SEEDS = (0, 1)


# ---------------------------------------------------------------- helpers

def vec(a) -> np.ndarray:
    """Column-major vec as a column."""
    return np.asarray(a, dtype=float).reshape(-1, 1, order="F")


def commutation(m: int, n: int) -> np.ndarray:
    """Written independently of matcalc: K vec(A) = vec(Aᵀ) for an m × n A."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0
    return k


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def dg(v) -> np.ndarray:
    return np.diag(np.asarray(v, dtype=float).ravel())


def eye(k) -> np.ndarray:
    return np.eye(k)


def s(a) -> float:
    return float(np.asarray(a).item())


def fd_jacobian(f: Callable[[dict], np.ndarray], env: dict, name: str, h: float = FD_STEP) -> np.ndarray:
    """∂vec(f)/∂vec(env[name]) by central differences, columns in column-major order."""
    x = env[name]
    cols = []
    for k in range(x.size):
        idx = np.unravel_index(k, x.shape, order="F")
        step = h * max(1.0, abs(x[idx]))
        e = np.zeros_like(x)
        e[idx] = step
        plus, minus = vec(f({**env, name: x + e})), vec(f({**env, name: x - e}))
        cols.append(((plus - minus) / (2 * step)).ravel())
    return np.stack(cols, axis=1)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))


def assert_close(actual, expected, what="", tol=TOL):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = rel_err(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.2e}\nactual=\n{actual}\nexpected=\n{expected}"


def pyname(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def kind_of(sym) -> str:
    r, c = sym.shape
    if sym.symmetric:
        return f"symmetric({r})"
    if (r, c) == (1, 1):
        return "scalar"
    return f"vector({r})" if c == 1 else f"matrix({r}, {c})"


# matcalc.sampling's stand-in for `f: function` (any array convention) and its gradient
_STAND_IN = opaque_functions(matcalc.parse("f(x)", {"f": "function"}))
user_opaque, user_opaque_grad = _STAND_IN["f"], _STAND_IN["grad_f"]


@dataclass
class Point:
    env: dict           # inputs, 2-D arrays
    dims: dict
    fns: dict
    ev: Evaluator       # evaluator with definitions and d.adjoints evaluated

    def value(self, program):
        return lambda env: run_program(program, env, self.fns, self.dims)(program.output)


def point(d, seed: int, prep=None) -> Point:
    """matcalc's own sampled inputs (domain-aware), optionally adjusted."""
    program = d.program
    rng = np.random.default_rng(1000 + seed)
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    if prep is not None:
        env = prep(env)
    fns = opaque_functions(program)
    ev = run_program(program, env, fns, dims, d.adjoints)
    assert isinstance(ev, Evaluator)
    return Point(env, dims, fns, ev)


# ---------------------------------------------------------------- the cases

@dataclass
class Case:
    id: str
    kind: str                          # "jacobian" | "hessian"
    expr: str
    wrt: str
    value: Callable | None = None      # jacobian: independent f(env) -> 2-D array
    grad: Callable | None = None       # hessian: independent gradient (shape of the variable)
    closed: Callable | None = None     # independent closed form of J or H
    let: dict | None = None
    prep: Callable | None = None       # adjust the sampled point (e.g. relu away from 0)
    printed: str | None = None         # the printed form a person would write

    def __str__(self):
        return self.id


def away_from_zero(name, margin=0.3):
    def prep(env):
        x = env[name]
        return {**env, name: np.where(x >= 0, 1.0, -1.0) * (np.abs(x) + margin)}
    return prep


def _mlp_grads(e):
    a = e["W"] @ e["x"] + e["b"]
    h = np.tanh(a)
    r = e["V"] @ h - e["y"]
    g_a = (2 * e["V"].T @ r) * (1 - h ** 2)
    return g_a


def _mlp2_grad(e):
    h = np.tanh(e["X"] @ e["w"])
    r = s(e["v"].T @ h) - s(e["tau"])
    return e["X"].T @ ((2 * r * e["v"]) * (1 - h ** 2))


def _xsoft_grad_x(e):
    sm = softmax(e["W"] @ e["x"])
    return e["W"].T @ (e["y"] - sm * e["y"].sum())


def _xsoft_grad_W(e):
    sm = softmax(e["W"] @ e["x"])
    return (e["y"] - sm * e["y"].sum()) @ e["x"].T


def _xsoft_H_x(e):
    sm = softmax(e["W"] @ e["x"])
    return -e["y"].sum() * e["W"].T @ (dg(sm) - sm @ sm.T) @ e["W"]


def _xsoft_H_W(e):
    sm = softmax(e["W"] @ e["x"])
    return -e["y"].sum() * np.kron(e["x"] @ e["x"].T, dg(sm) - sm @ sm.T)


def _cubic_H(e):
    A, x = e["A"], e["x"]
    S = A + A.T
    q = s(x.T @ A @ x)
    return 3 * q ** 2 * S + 6 * q * (S @ x) @ (S @ x).T


MLP = "a = W*x + b; h = tanh(a); L = V*h"
MLP_LOSS = "a = W*x + b; h = tanh(a); L = norm2(V*h - y)^2"
MLP2_LOSS = "a = X*w; h = tanh(a); L = (v'*h - tau)^2"

JACOBIANS = [
    # ---- the required ones
    Case("tanh(Wx)/x", "jacobian", "tanh(W*x)", "x",
         value=lambda e: np.tanh(e["W"] @ e["x"]),
         closed=lambda e: dg(1 - np.tanh(e["W"] @ e["x"]) ** 2) @ e["W"],
         printed="diag(1 - tanh(W*x).^2)*W"),
    Case("softmax/x", "jacobian", "softmax(x)", "x",
         value=lambda e: softmax(e["x"]),
         closed=lambda e: dg(softmax(e["x"])) - softmax(e["x"]) @ softmax(e["x"]).T,
         printed="diag(softmax(x)) - softmax(x)*softmax(x)'"),
    Case("AXB/X", "jacobian", "A*X*B", "X",
         value=lambda e: e["A"] @ e["X"] @ e["B"],
         closed=lambda e: np.kron(e["B"].T, e["A"]),
         printed="kron(B', A)"),
    # ---- Cookbook-style
    Case("Ax/x", "jacobian", "A*x", "x", value=lambda e: e["A"] @ e["x"], closed=lambda e: e["A"]),
    Case("x.*y/x", "jacobian", "x .* y", "x", value=lambda e: e["x"] * e["y"], closed=lambda e: dg(e["y"])),
    Case("exp/x", "jacobian", "exp(x)", "x", value=lambda e: np.exp(e["x"]), closed=lambda e: dg(np.exp(e["x"]))),
    Case("log/x", "jacobian", "log(x)", "x", value=lambda e: np.log(e["x"]), closed=lambda e: dg(1 / e["x"])),
    Case("sigmoid/x", "jacobian", "sigmoid(x)", "x", value=lambda e: sigmoid(e["x"]),
         closed=lambda e: dg(sigmoid(e["x"]) * (1 - sigmoid(e["x"])))),
    Case("relu/x", "jacobian", "relu(x)", "x", value=lambda e: np.maximum(e["x"], 0),
         closed=lambda e: dg(e["x"] > 0), prep=away_from_zero("x")),
    Case("softplus/x", "jacobian", "softplus(x)", "x", value=lambda e: np.log1p(np.exp(e["x"])),
         closed=lambda e: dg(sigmoid(e["x"]))),
    Case("sqrt/x", "jacobian", "sqrt(x)", "x", value=lambda e: np.sqrt(e["x"]),
         closed=lambda e: dg(0.5 / np.sqrt(e["x"]))),
    Case("sin.*cos/x", "jacobian", "sin(x) .* cos(x)", "x", value=lambda e: np.sin(e["x"]) * np.cos(e["x"]),
         closed=lambda e: dg(np.cos(2 * e["x"]))),
    Case("x.^3/x", "jacobian", "x .^ 3", "x", value=lambda e: e["x"] ** 3, closed=lambda e: dg(3 * e["x"] ** 2)),
    Case("x*alpha/alpha", "jacobian", "x*alpha", "alpha", value=lambda e: e["x"] * s(e["alpha"]),
         closed=lambda e: e["x"]),
    Case("alpha*X/alpha", "jacobian", "alpha*X", "alpha", value=lambda e: s(e["alpha"]) * e["X"],
         closed=lambda e: vec(e["X"])),
    Case("exp(alpha*x)/alpha", "jacobian", "exp(alpha*x)", "alpha", value=lambda e: np.exp(s(e["alpha"]) * e["x"]),
         closed=lambda e: e["x"] * np.exp(s(e["alpha"]) * e["x"])),
    Case("(x'x)y/x", "jacobian", "(x'*x)*y", "x", value=lambda e: s(e["x"].T @ e["x"]) * e["y"],
         closed=lambda e: 2 * e["y"] @ e["x"].T),
    Case("x'Ax/x", "jacobian", "x'*A*x", "x", value=lambda e: e["x"].T @ e["A"] @ e["x"],
         closed=lambda e: e["x"].T @ (e["A"] + e["A"].T)),
    Case("x'Ax/A", "jacobian", "x'*A*x", "A", value=lambda e: e["x"].T @ e["A"] @ e["x"],
         closed=lambda e: vec(e["x"] @ e["x"].T).T),
    Case("x/norm2(x)/x", "jacobian", "x/norm2(x)", "x", value=lambda e: e["x"] / np.linalg.norm(e["x"]),
         closed=lambda e: (eye(e["x"].size) - e["x"] @ e["x"].T / (e["x"].T @ e["x"])) / np.linalg.norm(e["x"])),
    Case("xx'/x", "jacobian", "x*x'", "x", value=lambda e: e["x"] @ e["x"].T,
         closed=lambda e: np.kron(eye(e["x"].size), e["x"]) + np.kron(e["x"], eye(e["x"].size))),
    Case("A*inv(X)*b/X", "jacobian", "A*inv(X)*b", "X",
         value=lambda e: e["A"] @ np.linalg.solve(e["X"], e["b"]),
         closed=lambda e: -np.kron((np.linalg.inv(e["X"]) @ e["b"]).T, e["A"] @ np.linalg.inv(e["X"]))),
    Case("X'/X", "jacobian", "X'", "X", value=lambda e: e["X"].T,
         closed=lambda e: commutation(*e["X"].shape)),
    Case("XA/X", "jacobian", "X*A", "X", value=lambda e: e["X"] @ e["A"],
         closed=lambda e: np.kron(e["A"].T, eye(e["X"].shape[0]))),
    Case("AX'B/X", "jacobian", "A*X'*B", "X", value=lambda e: e["A"] @ e["X"].T @ e["B"],
         closed=lambda e: np.kron(e["B"].T, e["A"]) @ commutation(*e["X"].shape)),
    Case("tr(X)x/X", "jacobian", "tr(X)*x", "X", value=lambda e: np.trace(e["X"]) * e["x"],
         closed=lambda e: e["x"] @ vec(eye(e["X"].shape[0])).T),
    Case("tr(AX)/X", "jacobian", "tr(A*X)", "X", value=lambda e: np.array([[np.trace(e["A"] @ e["X"])]]),
         closed=lambda e: vec(e["A"].T).T),
    Case("det/X", "jacobian", "det(X)", "X", value=lambda e: np.array([[np.linalg.det(e["X"])]]),
         closed=lambda e: np.linalg.det(e["X"]) * vec(np.linalg.inv(e["X"]).T).T),
    Case("inv/X", "jacobian", "inv(X)", "X", value=lambda e: np.linalg.inv(e["X"]),
         closed=lambda e: -np.kron(np.linalg.inv(e["X"]).T, np.linalg.inv(e["X"]))),
    Case("XX/X", "jacobian", "X*X", "X", value=lambda e: e["X"] @ e["X"],
         closed=lambda e: np.kron(eye(len(e["X"])), e["X"]) + np.kron(e["X"].T, eye(len(e["X"])))),
    Case("X'X/X", "jacobian", "X'*X", "X", value=lambda e: e["X"].T @ e["X"],
         closed=lambda e: (np.kron(eye(e["X"].shape[1]), e["X"].T) @ eye(e["X"].size)
                           + np.kron(e["X"].T, eye(e["X"].shape[1])) @ commutation(*e["X"].shape))),
    Case("(AX).*B/X", "jacobian", "(A*X) .* B", "X", value=lambda e: (e["A"] @ e["X"]) * e["B"],
         closed=lambda e: dg(vec(e["B"])) @ np.kron(eye(e["X"].shape[1]), e["A"])),
    Case("X.^2/X", "jacobian", "X .^ 2", "X", value=lambda e: e["X"] ** 2, closed=lambda e: dg(2 * vec(e["X"]))),
    Case("softmax(Wx)/W", "jacobian", "softmax(W*x)", "W", value=lambda e: softmax(e["W"] @ e["x"]),
         closed=lambda e: np.kron(e["x"].T, dg(softmax(e["W"] @ e["x"]))
                                  - softmax(e["W"] @ e["x"]) @ softmax(e["W"] @ e["x"]).T)),
    Case("logsumexp(Wx)/W", "jacobian", "logsumexp(W*x)", "W",
         value=lambda e: np.array([[np.log(np.exp(e["W"] @ e["x"]).sum())]]),
         closed=lambda e: vec(softmax(e["W"] @ e["x"]) @ e["x"].T).T),
    Case("tanh(Wx)/W", "jacobian", "tanh(W*x)", "W", value=lambda e: np.tanh(e["W"] @ e["x"]),
         closed=lambda e: dg(1 - np.tanh(e["W"] @ e["x"]) ** 2) @ np.kron(e["x"].T, eye(e["W"].shape[0]))),
    Case("f(Wx)/W", "jacobian", "f(W*x)", "W", let={"f": "function"},
         value=lambda e: np.array([[user_opaque(e["W"] @ e["x"])]]),
         closed=lambda e: vec(user_opaque_grad(e["W"] @ e["x"]) @ e["x"].T).T),
    # ---- programs with named definitions
    Case("mlp/x", "jacobian", MLP, "x",
         value=lambda e: e["V"] @ np.tanh(e["W"] @ e["x"] + e["b"]),
         closed=lambda e: e["V"] @ dg(1 - np.tanh(e["W"] @ e["x"] + e["b"]) ** 2) @ e["W"]),
    Case("mlp/W", "jacobian", MLP, "W",
         value=lambda e: e["V"] @ np.tanh(e["W"] @ e["x"] + e["b"]),
         closed=lambda e: (e["V"] @ dg(1 - np.tanh(e["W"] @ e["x"] + e["b"]) ** 2)
                           @ np.kron(e["x"].T, eye(e["W"].shape[0])))),
    Case("mlp/b", "jacobian", MLP, "b",
         value=lambda e: e["V"] @ np.tanh(e["W"] @ e["x"] + e["b"]),
         closed=lambda e: e["V"] @ dg(1 - np.tanh(e["W"] @ e["x"] + e["b"]) ** 2)),
    Case("mlp/V", "jacobian", MLP, "V",
         value=lambda e: e["V"] @ np.tanh(e["W"] @ e["x"] + e["b"]),
         closed=lambda e: np.kron(np.tanh(e["W"] @ e["x"] + e["b"]).T, eye(e["V"].shape[0]))),
    Case("a,a.*a/x", "jacobian", "a = W*x; q = a .* a; L = a + q", "x",
         value=lambda e: e["W"] @ e["x"] + (e["W"] @ e["x"]) ** 2,
         closed=lambda e: (eye(e["W"].shape[0]) + 2 * dg(e["W"] @ e["x"])) @ e["W"]),
]

HESSIANS = [
    # ---- the required ones
    Case("x'Ax", "hessian", "x'*A*x", "x",
         grad=lambda e: (e["A"] + e["A"].T) @ e["x"], closed=lambda e: e["A"] + e["A"].T,
         printed="A + A'"),
    Case("logistic", "hessian", "sum(log(1 + exp(-y .* (X*w))))", "w",
         grad=lambda e: e["X"].T @ (-e["y"] * sigmoid(-e["y"] * (e["X"] @ e["w"]))),
         closed=lambda e: (lambda p: e["X"].T @ dg(e["y"] ** 2 * p * (1 - p)) @ e["X"])(
             sigmoid(-e["y"] * (e["X"] @ e["w"]))),
         printed="X'*diag(y.^2 .* p .* (1 - p))*X"),
    Case("logdet", "hessian", "logdet(X)", "X",
         grad=lambda e: np.linalg.inv(e["X"]).T,
         closed=lambda e: -np.kron(np.linalg.inv(e["X"]), np.linalg.inv(e["X"]).T) @ commutation(*e["X"].shape),
         printed="-kron(inv(X), inv(X)')*commutation(n, n)"),
    # ---- more
    Case("norm2(Ax-b)^2", "hessian", "norm2(A*x - b)^2", "x",
         grad=lambda e: 2 * e["A"].T @ (e["A"] @ e["x"] - e["b"]), closed=lambda e: 2 * e["A"].T @ e["A"]),
    Case("logsumexp", "hessian", "logsumexp(x)", "x",
         grad=lambda e: softmax(e["x"]), closed=lambda e: dg(softmax(e["x"])) - softmax(e["x"]) @ softmax(e["x"]).T),
    Case("sum(exp)", "hessian", "sum(exp(x))", "x", grad=lambda e: np.exp(e["x"]), closed=lambda e: dg(np.exp(e["x"]))),
    Case("(x'x)^2", "hessian", "(x'*x)^2", "x",
         grad=lambda e: 4 * s(e["x"].T @ e["x"]) * e["x"],
         closed=lambda e: 4 * s(e["x"].T @ e["x"]) * eye(e["x"].size) + 8 * e["x"] @ e["x"].T),
    Case("tr(X'AX)", "hessian", "tr(X'*A*X)", "X",
         grad=lambda e: (e["A"] + e["A"].T) @ e["X"],
         closed=lambda e: np.kron(eye(e["X"].shape[1]), e["A"] + e["A"].T)),
    Case("x'Ax+lambda|x|^2", "hessian", "x'*A*x + lambda*norm2(x)^2", "x",
         grad=lambda e: (e["A"] + e["A"].T) @ e["x"] + 2 * s(e["lambda"]) * e["x"],
         closed=lambda e: e["A"] + e["A"].T + 2 * s(e["lambda"]) * eye(e["x"].size)),
    Case("ridge", "hessian", "norm2(X*w - y)^2 + lambda*norm2(w)^2", "w",
         grad=lambda e: 2 * e["X"].T @ (e["X"] @ e["w"] - e["y"]) + 2 * s(e["lambda"]) * e["w"],
         closed=lambda e: 2 * e["X"].T @ e["X"] + 2 * s(e["lambda"]) * eye(e["w"].size)),
    Case("mlp-loss/W", "hessian", MLP_LOSS, "W", grad=lambda e: _mlp_grads(e) @ e["x"].T),
    Case("mlp-loss/b", "hessian", MLP_LOSS, "b", grad=_mlp_grads),
    Case("mlp-loss/x", "hessian", MLP_LOSS, "x", grad=lambda e: e["W"].T @ _mlp_grads(e)),
    Case("mlp-loss/V", "hessian", MLP_LOSS, "V",
         grad=lambda e: 2 * (e["V"] @ np.tanh(e["W"] @ e["x"] + e["b"]) - e["y"]) @ np.tanh(e["W"] @ e["x"] + e["b"]).T,
         closed=lambda e: 2 * np.kron((lambda h: h @ h.T)(np.tanh(e["W"] @ e["x"] + e["b"])), eye(e["V"].shape[0]))),
    Case("mlp2-loss/w", "hessian", MLP2_LOSS, "w", grad=_mlp2_grad),
    Case("softplus-ridge/w", "hessian", "a = X*w; L = sum(softplus(a)) + lambda/2*norm2(w)^2", "w",
         grad=lambda e: e["X"].T @ sigmoid(e["X"] @ e["w"]) + s(e["lambda"]) * e["w"],
         closed=lambda e: (e["X"].T @ dg(sigmoid(e["X"] @ e["w"]) * (1 - sigmoid(e["X"] @ e["w"]))) @ e["X"]
                           + s(e["lambda"]) * eye(e["w"].size))),
    Case("tr(inv(X))", "hessian", "tr(inv(X))", "X",
         grad=lambda e: -(np.linalg.inv(e["X"]) @ np.linalg.inv(e["X"])).T),
    Case("det", "hessian", "det(X)", "X", grad=lambda e: np.linalg.det(e["X"]) * np.linalg.inv(e["X"]).T),
    Case("tr(XX)", "hessian", "tr(X*X)", "X", grad=lambda e: 2 * e["X"].T,
         closed=lambda e: 2 * commutation(*e["X"].shape)),
    Case("sum(x.^3)", "hessian", "sum(x .^ 3)", "x", grad=lambda e: 3 * e["x"] ** 2, closed=lambda e: dg(6 * e["x"])),
    Case("alpha^2*sum(x)", "hessian", "alpha^2*sum(x)", "alpha",
         grad=lambda e: np.array([[2 * s(e["alpha"]) * e["x"].sum()]]),
         closed=lambda e: np.array([[2 * e["x"].sum()]])),
    Case("norm2(x)", "hessian", "norm2(x)", "x", grad=lambda e: e["x"] / np.linalg.norm(e["x"]),
         closed=lambda e: (eye(e["x"].size) - e["x"] @ e["x"].T / s(e["x"].T @ e["x"])) / np.linalg.norm(e["x"])),
    Case("(x'Ax)^3", "hessian", "(x'*A*x)^3", "x",
         grad=lambda e: 3 * s(e["x"].T @ e["A"] @ e["x"]) ** 2 * (e["A"] + e["A"].T) @ e["x"], closed=_cubic_H),
    Case("y'log softmax/x", "hessian", "y'*log(softmax(W*x))", "x", grad=_xsoft_grad_x, closed=_xsoft_H_x),
    Case("y'log softmax/W", "hessian", "y'*log(softmax(W*x))", "W", grad=_xsoft_grad_W, closed=_xsoft_H_W),
    Case("x'Sx sym", "hessian", "x'*S*x", "x", let={"S": "symmetric(n)"},
         grad=lambda e: 2 * e["S"] @ e["x"], closed=lambda e: 2 * e["S"]),
    Case("logdet(X'X) tall", "hessian", "logdet(X'*X)", "X", let={"X": "matrix(5, 3)"},
         grad=lambda e: 2 * e["X"] @ np.linalg.inv(e["X"].T @ e["X"])),
    Case("sum(sigmoid)", "hessian", "sum(sigmoid(x))", "x",
         grad=lambda e: sigmoid(e["x"]) * (1 - sigmoid(e["x"])),
         closed=lambda e: dg(sigmoid(e["x"]) * (1 - sigmoid(e["x"])) * (1 - 2 * sigmoid(e["x"])))),
]

CASES = JACOBIANS + HESSIANS
REQUIRED = [c for c in CASES if c.printed is not None]


@functools.lru_cache(maxsize=None)
def derive(kind: str, expr: str, wrt: str, let: tuple = ()):
    return getattr(matcalc, kind)(expr, wrt, dict(let) or None)


def derivation(case: Case):
    return derive(case.kind, case.expr, case.wrt, tuple(sorted((case.let or {}).items())))


def module_kwargs(d, env) -> dict:
    kw = {pyname(n): to_user(env[n], env[n].shape) for n in d.program.inputs}
    for f in d.program.functions:
        kw[f], kw["grad_" + f] = user_opaque, user_opaque_grad
    return kw


# ---------------------------------------------------------------- 1. matcalc's own check

@pytest.mark.parametrize("case", CASES, ids=str)
def test_own_check_passes(case):
    report = derivation(case).check()
    assert report.ok, report.message
    assert report.points >= 1


# ---------------------------------------------------------------- 2.–4. numbers, shapes, symmetry

@pytest.mark.parametrize("case", JACOBIANS, ids=str)
def test_jacobian_against_finite_differences(case):
    d = derivation(case)
    assert d.command == "jacobian"
    for seed in SEEDS:
        pt = point(d, seed, case.prep)
        J = pt.ev(d.result)
        f0 = pt.ev(d.program.output)
        x = pt.env[case.wrt]
        if x.size == 1:                      # ∂F/∂α has the shape of F (interface.md §1); its vec is J
            assert J.shape == f0.shape, f"∂f/∂α is {J.shape}, expected f's shape {f0.shape}"
            J = J.reshape(-1, 1, order="F")
        assert J.shape == (f0.size, x.size), f"J is {J.shape}, expected len(f) × len(x) = {(f0.size, x.size)}"
        if case.value is not None:                  # the independent function is the same function
            assert_close(case.value(pt.env), f0, "independent value vs matcalc's value")
            f = case.value
        else:
            f = pt.value(d.program)
        assert_close(J, fd_jacobian(f, pt.env, case.wrt), f"{case.expr} vs central differences")
        # the program's value, finite-differenced through matcalc's own evaluator, agrees too
        assert_close(J, fd_jacobian(pt.value(d.program), pt.env, case.wrt), "vs differences of run_program")
        if case.closed is not None:
            assert_close(J, case.closed(pt.env), "vs the closed form")


@pytest.mark.parametrize("case", HESSIANS, ids=str)
def test_hessian_against_finite_differences(case):
    d = derivation(case)
    assert d.command == "hessian"
    g = matcalc.grad(d.program, case.wrt)
    for seed in SEEDS:
        pt = point(d, seed, case.prep)
        H = pt.ev(d.result)
        x = pt.env[case.wrt]
        assert H.shape == (x.size, x.size)
        scale = max(1.0, float(np.max(np.abs(H))))
        assert np.allclose(H, H.T, rtol=0, atol=1e-8 * scale), f"Hessian not symmetric:\n{H}"
        matcalc_grad = lambda env: run_program(g.program, env, pt.fns, pt.dims, g.adjoints)(g.result)
        assert_close(case.grad(pt.env), matcalc_grad(pt.env), "independent gradient vs matcalc.grad")
        assert_close(H, fd_jacobian(case.grad, pt.env, case.wrt), f"{case.expr} vs differences of the gradient")
        if case.closed is not None:
            assert_close(H, case.closed(pt.env), "vs the closed form")


# ---------------------------------------------------------------- 5. the generated module

@pytest.mark.parametrize("case", CASES, ids=str)
def test_generated_module(case):
    d = derivation(case)
    mod = d.function()
    fn = getattr(mod, f"{case.kind}_{pyname(case.wrt)}")
    for seed in SEEDS:
        pt = point(d, seed, case.prep)
        expected = pt.ev(d.result)
        want = to_user(expected, expected.shape)   # an m×1 or 1×n Jacobian comes back 1-D
        kw = module_kwargs(d, pt.env)
        got = fn(**kw)
        assert np.shape(got) == np.shape(want), f"{np.shape(got)} != {np.shape(want)}"
        assert_close(got, want, "generated module")
        both = mod.value_and_grad(**kw)
        assert isinstance(both, tuple) and len(both) == 2
        value = pt.ev(d.program.output)
        assert_close(np.ravel(both[0]), np.ravel(to_user(value, value.shape)), "value_and_grad value")
        assert_close(both[1], want, "value_and_grad derivative")
        assert_close(np.ravel(mod.value(**kw)), np.ravel(to_user(value, value.shape)), "value()")


# ---------------------------------------------------------------- 6. printed forms of the required cases

def _expected_program(case: Case, d):
    let = {n: kind_of(sym) for n, sym in d.program.inputs.items()}
    text = case.printed
    if case.id == "logistic":
        text = "p = sigmoid(-y .* (X*w)); H = " + text
    return matcalc.parse(text, let)


@pytest.mark.parametrize("case", REQUIRED, ids=str)
def test_required_forms_evaluate_to_the_result(case):
    """The form a person writes (parsed by matcalc) has the same value as d.result."""
    d = derivation(case)
    expected = _expected_program(case, d)
    for seed in SEEDS:
        pt = point(d, seed)
        want = run_program(expected, pt.env, pt.fns, pt.dims)(expected.output)
        assert_close(pt.ev(d.result), want, f"{d.result} vs {case.printed}")


# matcalc prints the logistic Hessian as the equivalent
#   X'*diag((1 - sigmoid(-(X*w .* y))) .* sigmoid(-(X*w .* y)) .* y.^2)*X
# (checked numerically above), so only the other five are compared as strings.
@pytest.mark.parametrize("case", [c for c in REQUIRED if c.id != "logistic"], ids=str)
def test_required_printed_form(case):
    d = derivation(case)
    assert str(d.result) == case.printed
    assert d.text() == case.printed           # one result, nothing named: the bare expression


def test_logistic_hessian_printed_form_is_an_equivalent_one():
    d = derivation(next(c for c in REQUIRED if c.id == "logistic"))
    text = str(d.result)
    assert text.startswith("X'*diag(") and text.endswith(")*X"), text
    assert "sigmoid" in text and "y.^2" in text


def test_commutation_matrix_agrees_with_matcalc():
    from matcalc.numeric import commutation_matrix
    for m, n in [(2, 3), (3, 2), (4, 4)]:
        a = np.arange(m * n, dtype=float).reshape(m, n)
        assert np.array_equal(commutation(m, n) @ vec(a), vec(a.T))
        assert np.array_equal(commutation_matrix(m, n), commutation(m, n))


# ---------------------------------------------------------------- other results of the derivation

def test_jacobian_with_several_variables():
    d = matcalc.jacobian(MLP, ["x", "W"])
    assert list(d.results) == ["x", "W"]
    assert d.check().ok
    mod = d.function()
    for seed in SEEDS:
        pt = point(d, seed)
        f = pt.value(d.program)
        for name in ("x", "W"):
            J = pt.ev(d.results[name])
            assert_close(J, fd_jacobian(f, pt.env, name), f"d/d{name}")
        kw = module_kwargs(d, pt.env)
        value, jx, jw = mod.value_and_grad(**kw)
        assert_close(jx, pt.ev(d.results["x"]), "jacobian_x")
        assert_close(jw, pt.ev(d.results["W"]), "jacobian_W")
        assert_close(mod.jacobian_x(**kw), jx, "jacobian_x()")
        assert_close(mod.jacobian_W(**kw), jw, "jacobian_W()")


@pytest.mark.parametrize("wrt, closed", [
    ("a", lambda e, h: e["V"] @ dg(1 - h ** 2)),
    ("h", lambda e, h: e["V"]),
])
def test_jacobian_with_respect_to_an_intermediate(wrt, closed):
    """With the intermediate's definition held fixed, it is an ordinary input."""
    d = matcalc.jacobian(MLP, wrt)
    assert d.check().ok
    pt = point(d, 0)
    env = dict(pt.ev.env)                             # inputs and the defined a, h
    J = pt.ev(d.result)
    fixed = frozenset({wrt})
    f = lambda e: run_program(d.program, e, pt.fns, pt.dims, fixed=fixed)(d.program.output)
    assert J.shape == (env["L"].size, env[wrt].size)
    assert_close(J, fd_jacobian(f, env, wrt), f"d/d{wrt}")
    assert_close(J, closed(pt.env, env["h"]), "closed form")


def test_program_jacobian_refers_to_the_definitions():
    assert str(matcalc.jacobian(MLP, "x").result) == "V*diag(1 - h.^2)*W"


def test_hessian_text_lists_its_named_intermediates():
    d = derivation(next(c for c in HESSIANS if c.id == "mlp-loss/b"))
    text = d.text()
    names = [s.name for s, _ in d.adjoints]
    for name in names:
        assert f"{name} = " in text
    if names:
        assert "hessian_b = " + str(d.result) in text
    else:
        assert text == str(d.result)


def test_hessian_of_a_scalar_variable_is_1x1():
    d = matcalc.hessian("alpha^2*sum(x)", "alpha")
    pt = point(d, 0)
    H = pt.ev(d.result)
    assert H.shape == (1, 1)
    assert np.isclose(H.item(), 2 * pt.env["x"].sum())
    assert isinstance(d.function().hessian_alpha(**module_kwargs(d, pt.env)), float)


def test_latex_of_a_kronecker_result():
    d = derivation(next(c for c in JACOBIANS if c.id == "AXB/X"))
    tex = d.latex()
    assert r"\otimes" in tex and "B^{T}" in tex
    assert r"K_{n,n}" in derivation(next(c for c in HESSIANS if c.id == "logdet")).latex()


def test_steps_of_a_plain_jacobian_end_in_the_result():
    d = matcalc.jacobian("softmax(x)", "x")
    assert d.steps
    assert d.steps[-1].after == d.result
    assert r"\begin{align*}" in d.latex(steps=True)


# ---------------------------------------------------------------- symmetric variables

def _symmetric_directions(n):
    for i in range(n):
        for j in range(i, n):
            e = np.zeros((n, n))
            e[i, j] = e[j, i] = 1.0
            yield e


@pytest.mark.parametrize("kind, expr, target", [
    ("jacobian", "X'*A", lambda e, X: X.T @ e["A"]),
    ("jacobian", "X*A", lambda e, X: X @ e["A"]),
    ("jacobian", "inv(X)", lambda e, X: np.linalg.inv(X)),
    ("hessian", "logdet(X)", lambda e, X: np.linalg.inv(X)),          # the gradient, X symmetric
    ("hessian", "tr(X*A*X)", lambda e, X: (e["A"] @ X + X @ e["A"] + (e["A"] @ X + X @ e["A"]).T) / 2),
])
def test_symmetric_variable_along_symmetric_directions(kind, expr, target):
    """For symmetric X only symmetric dX are meaningful: J vec(E) = directional derivative."""
    d = getattr(matcalc, kind)(expr, "X", {"X": "symmetric(n)"})
    pt = point(d, 0)
    X = pt.env["X"]
    assert np.allclose(X, X.T)
    J = pt.ev(d.result)
    assert J.shape[1] == X.size
    if kind == "hessian":
        assert np.allclose(J, J.T, atol=1e-8 * max(1.0, np.abs(J).max()))
    h = 1e-5
    for e in _symmetric_directions(X.shape[0]):
        numeric = (vec(target(pt.env, X + h * e)) - vec(target(pt.env, X - h * e))) / (2 * h)
        assert_close(J @ vec(e), numeric, f"{expr} along a symmetric direction")


@pytest.mark.parametrize("expr", ["X'*A", "X'"])
def test_symmetric_jacobian_own_check(expr):
    assert matcalc.jacobian(expr, "X", {"X": "symmetric(n)"}).check().ok


# ---------------------------------------------------------------- errors that are not bugs

@pytest.mark.parametrize("expr, wrt", [("diag(x)", "x"), ("A*diag(x)*B", "x"), ("diag(X)", "X"),
                                       ("A*diag(X)", "X"), ("exp(diag(X))", "X")])
def test_jacobian_through_diag_of_a_variable(expr, wrt):
    """diag(M) = P vec(M) and vec(diag(m)) = Pᵀ m, P = (1ᵀ⊗I) ⊙ (I⊗1ᵀ) a selection matrix."""
    d = matcalc.jacobian(expr, wrt)
    assert d.check().ok, d.result


def test_unsupported_from_the_command_line():
    p = subprocess.run([sys.executable, "-m", "matcalc", "hessian", "sum(grad_f(x))", "--wrt", "x",
                        "--let", "f: function"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "not supported" in p.stderr + p.stdout and "Traceback" not in p.stderr


def test_hessian_needs_a_scalar():
    with pytest.raises(UsageError) as info:
        matcalc.hessian("A*x", "x")
    assert "scalar" in str(info.value) and "jacobian" in (info.value.hint or "")


def test_hessian_through_an_opaque_function_is_unsupported():
    with pytest.raises(UnsupportedError) as info:
        matcalc.hessian("f(W*x)", "W", {"f": "function"})
    assert "second derivative" in str(info.value)


def test_jacobian_with_respect_to_a_missing_name():
    with pytest.raises(NameError_) as info:
        matcalc.jacobian("A*y", "x")
    assert "no x" in str(info.value)


# ---------------------------------------------------------------- bugs

@pytest.mark.parametrize("kind, expr, wrt", [
    ("jacobian", "sign(x)", "x"),
    ("jacobian", "X*inv(X)", "X"),
    ("jacobian", "a = W*x; L = a - a", "x"),
    ("hessian", "sum(abs(x))", "x"),
    ("hessian", "norm1(x)", "x"),
    ("hessian", "sum(relu(x))", "x"),
])
def test_zero_derivative(kind, expr, wrt):
    d = getattr(matcalc, kind)(expr, wrt)
    pt = point(d, 0, away_from_zero(wrt) if wrt == "x" else None)
    J = pt.ev(d.result)
    f0 = pt.ev(d.program.output)
    n = pt.env[wrt].size
    assert J.shape == ((n if kind == "hessian" else f0.size), n)
    assert np.allclose(J, 0, atol=1e-8)


def test_zero_jacobian_from_the_command_line():
    p = subprocess.run([sys.executable, "-m", "matcalc", "jacobian", "sign(x)", "--wrt", "x"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_hessian_with_several_variables():
    both = matcalc.hessian(MLP_LOSS, ["W", "b"])
    for name in ("W", "b"):
        alone = matcalc.hessian(MLP_LOSS, name)
        pt = point(alone, 0)
        ev = run_program(both.program, pt.env, pt.fns, pt.dims, both.adjoints)
        assert_close(ev(both.results[name]), pt.ev(alone.result), f"d²L/d{name}²")
    assert both.check().ok


@pytest.mark.parametrize("kind, expr, wrt", [("hessian", "logdet(X)", "X"), ("jacobian", MLP, "W")])
def test_steps_name_only_defined_things(kind, expr, wrt):
    d = getattr(matcalc, kind)(expr, wrt)
    known = set(d.program.inputs) | {s.name for s, _ in d.program.definitions} | {s.name for s, _ in d.adjoints}
    for step in d.steps:
        for e in (step.before, step.after):
            assert set(E.symbols(e)) <= known, f"{step}: refers to {set(E.symbols(e)) - known}"
    assert "gradient" not in d.latex(steps=True)


def test_hessian_latex_is_a_second_derivative():
    tex = matcalc.hessian("x'*A*x", "x").latex()
    assert r"\partial^{2}" in tex or r"\partial^2" in tex, tex


@pytest.mark.parametrize("kind, expr", [("hessian", "logdet(X'*X)"), ("grad", "logdet(X*X')"),
                                        ("grad", "logdet(2*X'*X) + tr(inv(X'*X))")])
def test_logdet_gram_own_check_with_inferred_dimensions(kind, expr):
    """Found here: the sampler drew a wide X (3×4), so X'*X was singular and the check
    FAILED (error inf).  A Gram product that must be SPD now orders the sizes."""
    for seed in range(4):
        assert getattr(matcalc, kind)(expr, "X").check(seed=seed).ok


def test_kron_jacobian_text_round_trips():
    """Found here: 'diag(1 - tanh(W*x).^2)*kron(x', I)' with W: matrix(3, 4) was a shape
    error pasted back (the bare I took a fresh size); it prints as kron(x', I(3)) now."""
    let = {"W": "matrix(3, 4)", "x": "vector(4)"}
    d = matcalc.jacobian("tanh(W*x)", "W", let)
    again = matcalc.parse(d.text(), let)
    pt = point(d, 0)
    assert_close(run_program(again, pt.env, pt.fns, pt.dims)(again.output), pt.ev(d.result), "round trip")


@pytest.mark.parametrize("kind, expr, wrt, let", [
    ("jacobian", "A*X*B", "X", {"A": "matrix(2, 3)", "X": "matrix(3, 4)", "B": "matrix(4, 5)"}),
    ("jacobian", "softmax(x)", "x", {"x": "vector(4)"}),
    ("hessian", "sum(log(1 + exp(-y .* (X*w))))", "w", {"X": "matrix(5, 3)"}),
])
def test_text_round_trips(kind, expr, wrt, let):
    d = getattr(matcalc, kind)(expr, wrt, let)
    again = matcalc.parse(d.text(), let)
    pt = point(d, 0)
    assert_close(run_program(again, pt.env, pt.fns, pt.dims)(again.output), pt.ev(d.result), "round trip")


# ---------------------------------------------------------------- 7. the command line

def _cli(*args):
    p = subprocess.run([sys.executable, "-m", "matcalc", *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_cli_jacobian_softmax_check():
    p = _cli("jacobian", "softmax(x)", "--wrt", "x", "--check")
    assert p.returncode == 0, p.stderr
    assert "diag(softmax(x)) - softmax(x)*softmax(x)'" in p.stdout
    assert "passed" in p.stdout + p.stderr


def test_cli_hessian_logdet_numpy():
    p = _cli("hessian", "logdet(X)", "--wrt", "X", "--format", "numpy")
    assert p.returncode == 0, p.stderr
    namespace: dict = {}
    exec(compile(p.stdout, "<cli module>", "exec"), namespace)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    X = q @ np.diag([1.0, 2.0, 3.0]) @ q.T + 0.3 * rng.standard_normal((3, 3))   # not symmetric
    inv = np.linalg.inv(X)
    H = namespace["hessian_X"](X=X)
    assert H.shape == (9, 9)
    assert_close(H, -np.kron(inv, inv.T) @ commutation(3, 3), "CLI hessian_X")
    assert np.allclose(H, H.T)
    value, H2 = namespace["value_and_grad"](X=X)
    assert np.isclose(value, np.linalg.slogdet(X)[1])
    assert_close(H2, H, "CLI value_and_grad")


def test_cli_symmetric_jacobian_check():
    p = _cli("jacobian", "X'*A", "--wrt", "X", "--let", "X: symmetric(n)", "--check")
    assert p.returncode == 0, p.stdout + p.stderr
