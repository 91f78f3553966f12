"""--steps: the derivation is a chain of equalities, each naming its identity.

Checked three ways: the seed derivation step by step; for every Cookbook
identity, every rewrite line numerically equal to the line before it (with
random values for every differential and adjoint), every differential line
against finite differences of the definition it differentiates, and the last
line equal to the result; and the LaTeX of several derivations compiled by a
real LaTeX engine.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import expr as E
from matcalc.check import dimension_sizes, opaque_functions, sample_inputs
from matcalc.numeric import Evaluator, run_program
from tests.test_cookbook import ROWS, XFAIL

CLI = [sys.executable, "-m", "matcalc"]


# ------------------------------------------------------------- the seed

def test_seed_derivation_backprop_rule():
    """dL = ∇f(a) : da, = ∇f(a) : dW h, = ∇f(a) hᵀ : dW  ⇒  ∂L/∂W = ∇f(a) hᵀ."""
    d = matcalc.grad("a = W*h + b; L = f(a)", wrt="W", let={"f": "function"})
    shown = [(s.kind, s.rule.name, str(s.after)) for s in d.steps if s.rule.name != "linearity"]
    assert shown == [
        ("differential", "chain rule", "grad_f(a)'*da"),
        ("rewrite", "move a left factor", "grad_f(a) : da"),
        ("adjoint", "adjoint", "grad_f(a)"),
        ("differential", "product rule", "g_a : dW*h"),
        ("rewrite", "move a right factor", "g_a*h' : dW"),
        ("identify", "identification", "grad_f(a)*h'"),
    ]
    assert d.steps[3].note.startswith("where a = W*h + b")
    assert d.steps[3].rule.display == "d(AB) = dA B + A dB"
    assert d.steps[4].rule.display == "A : BC = ACᵀ : B"


def test_seed_text_output():
    out = subprocess.run(CLI + ["grad", "f(W*h + b)", "--wrt", "W", "--let", "f: function", "--steps"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["dL", "=", "d(f(W*h", "+", "b))"]
    assert "grad_f(W*h + b)'*dW*h" in lines[1] and "chain rule" in lines[1]
    assert "grad_f(W*h + b)*h' : dW" in lines[2] and "A : BMC = BᵀACᵀ : M" in lines[2]
    assert lines[-1].replace(" ", "") == "∂L/∂W=grad_f(W*h+b)*h'"


def test_steps_all_shows_more_than_brief():
    brief = subprocess.run(CLI + ["grad", "x'*A*x", "--wrt", "x", "--steps"], capture_output=True, text=True)
    full = subprocess.run(CLI + ["grad", "x'*A*x", "--wrt", "x", "--steps=all"], capture_output=True, text=True)
    assert brief.returncode == full.returncode == 0
    assert len(full.stdout.splitlines()) > len(brief.stdout.splitlines())
    assert "G : (M + N) = G:M + G:N" in full.stdout


def test_json_steps_are_objects():
    import json
    out = subprocess.run(CLI + ["grad", "tr(W*h*h'*W')", "--wrt", "W", "--steps", "--format", "json"],
                         capture_output=True, text=True)
    steps = json.loads(out.stdout)["steps"]
    assert steps and all({"expr", "rule", "note"} <= set(s) for s in steps)
    assert steps[-1]["rule"] == "identification" and steps[-1]["expr"] == "2*W*h*h'"


# ------------------------------------------- every line is an equality

def _environment(d, rng):
    """Inputs from their domains, intermediates evaluated, and random values
    for every differential dS and every adjoint symbol g_*: each rewrite is an
    identity in those, so it must hold for any of them."""
    program = d.program
    dims = dimension_sizes(program, rng)
    env = sample_inputs(program, rng, dims)
    functions = opaque_functions(program)
    env = dict(run_program(program, env, functions, dims).env)
    ev = Evaluator(env, functions, dims)
    for s in d.steps:
        for e in (s.before, s.after):
            for n in E.walk(e):
                if isinstance(n, E.Differential) and isinstance(n.target, E.Symbol):
                    key = "d" + n.target.name
                    if key not in env:
                        env[key] = rng.standard_normal((ev.dim(n.shape[0]), ev.dim(n.shape[1])))
                elif isinstance(n, E.Symbol) and n.name not in env:
                    env[n.name] = rng.standard_normal((ev.dim(n.shape[0]), ev.dim(n.shape[1])))
    return env, functions, dims


def _close(a, b, what):
    scale = max(1.0, float(np.max(np.abs(b))))
    assert np.max(np.abs(a - b)) <= 1e-7 * scale, what


def _differential_by_differences(s, env, functions, dims, eps=1e-6):
    """G : d(body) by central differences of body along the random dS."""
    if s.definition is None:
        body, G = s.before.target, E.ONE
    else:
        body = s.definition[1]
        G = s.before.left if isinstance(s.before, E.Frobenius) else E.ONE
    moved = {n.target.name for n in E.walk(s.after) if isinstance(n, E.Differential)}
    plus = {**env, **{k: env[k] + eps * env["d" + k] for k in moved}}
    minus = {**env, **{k: env[k] - eps * env["d" + k] for k in moved}}
    slope = (Evaluator(plus, functions, dims)(body) - Evaluator(minus, functions, dims)(body)) / (2 * eps)
    g = Evaluator(env, functions, dims)(G)
    return np.array([[np.sum(g * slope)]]) if g.shape == slope.shape else g * slope


STEP_ROWS = [pytest.param(*r, id=r[0]) for r in ROWS if r[0] not in XFAIL]


@pytest.mark.parametrize("rid, expr, wrt, let, closed", STEP_ROWS)
def test_every_step_is_an_equality(rid, expr, wrt, let, closed):
    d = matcalc.grad(expr, wrt=wrt, let=let)
    identify = [s for s in d.steps if s.kind == "identify"]
    assert identify and identify[-1].after == d.result, "the last step is the result"
    rng = np.random.default_rng(7)
    env, functions, dims = _environment(d, rng)
    ev = Evaluator(env, functions, dims)
    for s in d.steps:
        if s.kind in ("rewrite", "collect"):
            _close(ev(s.after), ev(s.before), f"{rid}: {s.rule.name}: {s.before}  =/=  {s.after}")
        elif s.kind == "differential":
            _close(ev(s.after), _differential_by_differences(s, env, functions, dims),
                   f"{rid}: differential {s.before} = {s.after}")
        elif s.kind == "identify":
            G = s.before.left if isinstance(s.before, E.Frobenius) else None
            if G is not None and G.shape == d.results[s.note].shape and not d.program.inputs[s.note].symmetric:
                _close(ev(s.after), ev(G), f"{rid}: identification")


# ------------------------------------------------ LaTeX that compiles

LATEX_CASES = [
    ("examples/mlp.mc", ["W1", "b1", "W2", "b2"]),
    ("examples/gaussian.mc", ["Sigma", "mu"]),
    ("examples/logistic.mc", ["w"]),
    ("examples/least_squares.mc", ["w"]),
    ("examples/backprop.mc", ["W"]),
]
LATEX_EXPRESSIONS = [("logdet(X)", "X"), ("tr(inv(X)*A)", "X"), ("x'*A*x", "x"), ("det(X)", "X"),
                     ("sum(softmax(x) .* y)", "x"), ("norm2(W*h + b - y)^2", "W"), ("tr(X'*B*X)", "X")]


def _engine():
    for name in ("pdflatex", "lualatex"):
        if shutil.which(name):
            return name
    return None


def test_latex_derivations_compile(tmp_path):
    import os
    engine = _engine()
    if engine is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install a LaTeX engine (.ci/run installs texlive)")
        pytest.skip("no LaTeX engine installed")
    blocks = []
    for path, wrt in LATEX_CASES:
        with open(path) as fh:
            blocks.append(matcalc.grad(fh.read(), wrt=wrt).latex(steps=True))
    for text, wrt in LATEX_EXPRESSIONS:
        d = matcalc.grad(text, wrt=wrt)
        blocks += [d.latex(steps=True), d.latex(steps="all"), "$" + d.latex() + "$"]
    doc = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
           + "\n\n".join(blocks) + "\n\\end{document}\n")
    (tmp_path / "steps.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "steps.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "steps.pdf").stat().st_size > 1000


@pytest.mark.parametrize("expr, already", [("x'*S*y", False), ("logdet(S) + tr(S*S)", True)])
def test_symmetric_variables_are_explained(expr, already):
    """Issue 7: --steps says why a symmetric variable's gradient is sym(G), and why not
    the Cookbook's G + Gᵀ − diag(G); where G is symmetric already, it says so."""
    d = matcalc.grad(expr, "S", {"S": "symmetric(n)"})
    step = [s for s in d.steps if s.kind == "symmetric"]
    assert len(step) == 1 and (step[0].before == step[0].after) == already
    from matcalc.printing.steps import steps_text
    text = steps_text(d)
    assert "sym(G) = ½(G + Gᵀ)" in text and "G + Gᵀ − diag(G)" in text and "arXiv:1911.06491" in text
    assert ("symmetric already" in text) == already
    assert "operatorname{sym}" in d.latex(steps=True)


@pytest.mark.parametrize("kind, expr, wrt", [
    ("jacobian", "tanh(W*x)", "x"),
    ("jacobian", "a = W*x + b\nh = tanh(a)\nf = softmax(h)", "x"),
    ("jacobian", "A*X*B", "X"),
    ("hessian", "x'*A*x", "x"),
    ("hessian", "sum(log(1 + exp(-y .* (X*w))))", "w"),
    ("hessian", "a = W*x\nL = sum(tanh(a)) + x'*x", "x"),
    ("hessian", "logdet(X)", "X"),
])
def test_jacobian_and_hessian_steps_are_equalities(kind, expr, wrt):
    """A Jacobian's steps: the differential of each definition, forward, then J.
    A Hessian's: the gradient's derivation, then the Jacobian of the gradient.
    Every differential line is checked by central differences, every rewrite
    numerically, and the last line is the result."""
    from matcalc.printing.steps import steps_text
    d = getattr(matcalc, kind)(expr, wrt)
    kinds = [s.kind for s in d.steps]
    assert "forward" in kinds and kinds[-1] == "identify" and d.steps[-1].after == d.result
    if kind == "hessian":
        assert "differential" in kinds and kinds.index("differential") < kinds.index("forward")
    rng = np.random.default_rng(3)
    env, functions, dims = _environment(d, rng)
    ev = Evaluator(env, functions, dims)
    for s in d.steps:
        if s.kind in ("differential", "forward"):
            _close(ev(s.after), _differential_by_differences(s, env, functions, dims), f"{s.before} = {s.after}")
        elif s.kind in ("rewrite", "collect"):
            _close(ev(s.after), ev(s.before), f"{s.rule.name}: {s.before} =/= {s.after}")
    text = steps_text(d)
    if kind == "hessian":
        hessian = f"∂²L/∂vec({wrt})²" if d.program.inputs[wrt].shape[1] != 1 else f"∂²L/∂{wrt}²"
        assert f"∂L/∂{wrt}" in text and f"d(∂L/∂{wrt})" in text and hessian in text
    assert "_gradient" not in text
