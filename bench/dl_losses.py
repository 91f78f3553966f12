"""Deep-learning losses written two ways, one expression and a program with named
intermediates: matcalc's generated NumPy value_and_grad against hand-written NumPy,
jax.jit(jax.value_and_grad) and PyTorch autograd, float64, 2 threads, interleaved rounds
in one process, medians; ratios against hand-written NumPy.  Every implementation is
checked against matcalc's result (allclose) before anything is timed.

    python bench/dl_losses.py [--quick]    (pip install -r bench/requirements.txt first)

Problems: the two-layer tanh network (512 → 512 → 512, batch 256), batched softmax
regression (100 classes, 784 features, batch 512; the softmax over each column written
with exp and ones) and one attention head (128 tokens of width 256, query/key width 64,
values 256), its softmax written with exp, diag and ones, and written softmax(S, 2).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np

import matcalc
from generated_code import QUIET, SLOWER, _section, agree


@dataclass
class Problem:
    title: str
    expression: str
    program: str
    wrt: list[str]
    let: dict[str, str]
    inputs: Callable[[bool], dict]            # quick -> {name: array}
    hand: Callable[..., tuple]               # NumPy backprop, (value, *gradients)
    loss: Callable                           # loss(ns, **inputs), for JAX and PyTorch autograd


# ------------------------------------------------------------------ the problems

def _mlp_inputs(quick):
    n, batch = (64, 32) if quick else (512, 256)
    rng = np.random.default_rng(2)
    return {"W1": rng.standard_normal((n, n)) / np.sqrt(n), "W2": rng.standard_normal((n, n)) / np.sqrt(n),
            "X": rng.standard_normal((n, batch)), "Y": rng.standard_normal((n, batch))}


def _mlp_hand(W1, W2, X, Y):
    H = np.tanh(W1 @ X)
    R = W2 @ H - Y
    G = 2.0 * R
    return np.vdot(R, R), ((W2.T @ G) * (1.0 - H * H)) @ X.T, G @ H.T


def _mlp_loss(ns, W1, W2, X, Y):
    R = W2 @ ns.tanh(W1 @ X) - Y
    return ns.sum(R * R)


def _softmax_inputs(quick):
    k, d, batch = (10, 32, 16) if quick else (100, 784, 512)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, k, batch)
    return {"W": 0.01 * rng.standard_normal((k, d)), "X": rng.standard_normal((d, batch)),
            "Y": np.eye(k)[:, labels]}


def _softmax_hand_plain(W, X, Y):
    Z = W @ X
    E = np.exp(Z)
    s = E.sum(axis=0)
    return np.sum(np.log(s)) - np.sum(Y * Z), (E / s - Y) @ X.T


def _softmax_loss(ns, W, X, Y):
    Z = W @ X
    return ns.sum(ns.log(ns.sum(ns.exp(Z), 0))) - ns.sum(Y * Z)


def _attention_inputs(quick):
    t, d, h, p = (16, 16, 8, 16) if quick else (128, 256, 64, 256)
    rng = np.random.default_rng(4)
    return {"X": rng.standard_normal((t, d)), "Wq": rng.standard_normal((d, h)) / np.sqrt(d * h),
            "Wk": rng.standard_normal((d, h)) / np.sqrt(d * h), "Wv": rng.standard_normal((d, p)) / np.sqrt(d),
            "Y": rng.standard_normal((t, p))}


ATTENTION_LET = {"X": "matrix(t, d)", "Wq": "matrix(d, h)", "Wk": "matrix(d, h)", "Wv": "matrix(d, p)",
                 "Y": "matrix(t, p)"}


def _attention_hand(X, Wq, Wk, Wv, Y):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    E = np.exp(Q @ K.T)
    P = E / E.sum(axis=1, keepdims=True)
    R = P @ V - Y
    G = 2.0 * R
    dP = G @ V.T
    dS = P * (dP - np.sum(dP * P, axis=1, keepdims=True))
    return np.vdot(R, R), X.T @ (dS @ K), X.T @ (dS.T @ Q), X.T @ (P.T @ G)


def _attention_loss(ns, X, Wq, Wk, Wv, Y):
    E = ns.exp((X @ Wq) @ (X @ Wk).T)
    R = (E / E.sum(1)[:, None]) @ (X @ Wv) - Y
    return ns.sum(R * R)


PROBLEMS = [
    Problem("Two-layer tanh network, n = 512, batch 256", "norm2(W2*tanh(W1*X) - Y)^2",
            "H1 = tanh(W1*X); L = norm2(W2*H1 - Y)^2", ["W1", "W2"],
            {"W1": "matrix(n, n)", "W2": "matrix(n, n)", "X": "matrix(n, B)", "Y": "matrix(n, B)"},
            _mlp_inputs, _mlp_hand, _mlp_loss),
    Problem("Batched softmax regression, 100 classes, 784 features, batch 512",
            "sum(log(ones(k)'*exp(W*X))) - sum(Y .* (W*X))",
            "Z = W*X; L = sum(log(ones(k)'*exp(Z))) - sum(Y .* Z)", ["W"],
            {"W": "matrix(k, d)", "X": "matrix(d, B)", "Y": "matrix(k, B)"},
            _softmax_inputs, _softmax_hand_plain, _softmax_loss),
    Problem("Attention head, 128 tokens of width 256, query/key width 64",
            "norm2(diag(1 ./ (exp(X*Wq*(X*Wk)')*ones(t)))*exp(X*Wq*(X*Wk)')*X*Wv - Y)^2",
            "S = X*Wq*(X*Wk)'; E = exp(S); P = diag(1 ./ (E*ones(t)))*E; L = norm2(P*X*Wv - Y)^2",
            ["Wq", "Wk", "Wv"],
            ATTENTION_LET, _attention_inputs, _attention_hand, _attention_loss),
    Problem("Attention head, 128 tokens of width 256, query/key width 64, with softmax along rows",
            "norm2(softmax(X*Wq*(X*Wk)', 2)*X*Wv - Y)^2",
            "S = X*Wq*(X*Wk)'; P = softmax(S, 2); L = norm2(P*X*Wv - Y)^2",
            ["Wq", "Wk", "Wv"],
            ATTENTION_LET, _attention_inputs, _attention_hand, _attention_loss),
]


def _rows(problem: Problem, inputs: dict):
    gens = {spelling: matcalc.grad(text, wrt=problem.wrt, let=problem.let).function()
            for spelling, text in [("one expression", problem.expression), ("program", problem.program)]}
    ref = gens["program"].value_and_grad(**inputs)
    rows = []
    for spelling, gen in gens.items():
        agree(f"matcalc ({spelling})", gen.value_and_grad(**inputs), ref)
        rows.append((f"matcalc value_and_grad, {spelling}", lambda gen=gen: gen.value_and_grad(**inputs)))
    hand_args = {k: inputs[k] for k in problem.hand.__code__.co_varnames[:problem.hand.__code__.co_argcount]}
    agree("hand-written NumPy", problem.hand(**hand_args), ref)
    rows.append(("hand-written NumPy backprop", lambda: problem.hand(**hand_args)))

    jax = C.setup_jax()
    if jax:
        import jax.numpy as jnp
        names = list(inputs)
        argnums = tuple(names.index(w) for w in problem.wrt)
        jvg = jax.jit(jax.value_and_grad(lambda *a: problem.loss(jnp, **dict(zip(names, a))), argnums=argnums))
        args = [jnp.asarray(inputs[n]) for n in names]
        val, grads = jvg(*args)
        agree("jax", (val, *grads), ref)
        rows.append(("jax.jit(jax.value_and_grad)", lambda: jax.block_until_ready(jvg(*args))))

    torch = C.setup_torch()
    if torch:
        tensors = {n: torch.from_numpy(np.array(v)) for n, v in inputs.items()}
        for w in problem.wrt:
            tensors[w].requires_grad_()

        def tvg():
            loss = problem.loss(torch, **tensors)
            grads = torch.autograd.grad(loss, [tensors[w] for w in problem.wrt])
            return (loss.item(), *grads)
        agree("torch", tuple(t.numpy() if hasattr(t, "numpy") else t for t in tvg()), ref)
        rows.append(("PyTorch autograd (forward+backward)", tvg))
    return rows


def run(quick: bool = False) -> dict:
    repeats = 7 if quick else 80      # attention's medians moved by 10% between runs of 30 rounds
    parts, flags = [], []
    for problem in PROBLEMS:
        C.wait_for_quiet(max_wait=5 if quick else 30)
        inputs = problem.inputs(quick)
        rows = _rows(problem, inputs)
        times = C.interleaved(rows, repeats, quiet=QUIET)
        note = f"; one expression `{problem.expression}`, program `{problem.program}`"
        title = problem.title + (" (--quick: small sizes)" if quick else "")
        text, med = _section(title, rows, times, "hand-written NumPy backprop", note=note)
        parts.append(text)
        print(text + "\n", flush=True)
        for spelling in ("one expression", "program"):
            r = med[f"matcalc value_and_grad, {spelling}"] / med["hand-written NumPy backprop"]
            if r > SLOWER:
                flags.append(f"{problem.title}, written as {spelling}: {r:.2f}× hand-written NumPy")
    return {"markdown": "## Deep-learning losses, both spellings\n\n" + "\n\n".join(parts), "flags": flags}


def main(argv=None) -> dict:
    return C.main(run, argv)


if __name__ == "__main__":
    main()
