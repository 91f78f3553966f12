"""Jupyter's rich display: _repr_latex_ of expressions, programs, derivations and d.steps.

The notebook test (test_notebook.py) shows these reach a real kernel's output;
here each one is checked against the printers it must agree with.
"""
from __future__ import annotations

import copy
import pickle
import subprocess

import pytest

import matcalc
from matcalc.steps import Step
from tests.test_steps import _engine

BACKPROP = "a = W*h + b; L = f(a)"


def _math(block: str) -> str:
    """The LaTeX inside a $$...$$ display."""
    assert block.startswith("$$") and block.endswith("$$"), block
    return block[2:-2]


def test_a_result_displays_as_the_right_side_of_d_latex():
    d = matcalc.grad(BACKPROP, wrt="W", let={"f": "function"})
    label, rhs = d.latex().split(" = ", 1)
    assert _math(d.result._repr_latex_()) == rhs
    assert r"\nabla f" in rhs and "h^{T}" in rhs
    assert _math(d._repr_latex_()) == d.latex()


def test_every_subexpression_displays():
    d = matcalc.hessian("sum(log(1 + exp(-y .* (X*w))))", wrt="w")
    for node in [d.result, *d.result.children()]:
        assert _math(node._repr_latex_())


@pytest.mark.parametrize("command, wrt, label", [
    (matcalc.grad, "W", r"\frac{\partial L}{\partial W}"),
    (matcalc.jacobian, "x", r"\frac{\partial \operatorname{vec} f}{\partial \operatorname{vec} x}"),
    (matcalc.hessian, "x", r"\frac{\partial^2 L}{\partial \operatorname{vec} x^2}"),
])
def test_steps_display_as_the_align_derivation(command, wrt, label):
    text = {"W": "norm2(W*h + b - y)^2", "x": "tanh(W*x)" if command is matcalc.jacobian else "x'*A*x"}[wrt]
    d = command(text, wrt=wrt)
    shown = _math(d.steps._repr_latex_())
    assert shown == d.latex(steps=True)
    assert shown.startswith(r"\begin{align*}") and shown.endswith(r"\end{align*}")
    assert label in shown


def test_steps_are_still_the_list_of_steps():
    """docs/reference.md §4: d.steps is the derivation steps, each with the rule it applied."""
    d = matcalc.grad(BACKPROP, wrt="W", let={"f": "function"})
    assert isinstance(d.steps, list) and len(d.steps) > 3
    assert all(isinstance(s, Step) and s.rule.name for s in d.steps)
    assert d.steps == list(d.steps) and d.steps[-1] == list(d.steps)[-1]
    assert [s.rule.name for s in d.steps[:2]] == ["chain rule", "move a left factor"]
    d.numpy()    # builds a copy of the derivation: d's own steps stay as they were
    assert d.steps._repr_latex_() == "$$" + d.latex(steps=True) + "$$"
    again = pickle.loads(pickle.dumps(d))
    assert again.steps == d.steps and again.steps._repr_latex_() == d.steps._repr_latex_()
    assert copy.deepcopy(d).steps._repr_latex_() == d.steps._repr_latex_()


def test_a_program_displays_its_definitions_and_inferred_shapes():
    p = matcalc.parse(BACKPROP, let={"f": "function"})
    shown = _math(p._repr_latex_())
    assert shown.startswith(r"\begin{align*}")
    assert r"a &= W h + b \\" in shown and r"L &= f\left(a\right)" in shown
    w, h = p.inputs["W"].shape, p.inputs["h"].shape    # whatever names inference chose
    assert rf"W \in \mathbb{{R}}^{{{w[0]} \times {w[1]}}}" in shown
    assert rf"h \in \mathbb{{R}}^{{{h[0]}}}" in shown


@pytest.mark.parametrize("text, let, shown", [
    ("x'*A*x", {"A": "matrix(n, n)"},
     r"x^{T} A x \qquad \text{where } x \in \mathbb{R}^{n},\ A \in \mathbb{R}^{n \times n}"),
    ("S: symmetric(3); lambda*tr(S)", None,
     r"\lambda \operatorname{tr}\left(S\right) \qquad \text{where } \lambda \in \mathbb{R},\ S \in \mathbb{S}^{3}"),
    ("2", None, "2"),
])
def test_an_expression_program_displays_on_one_line(text, let, shown):
    assert _math(matcalc.parse(text, let)._repr_latex_()) == shown


def test_program_displays_compile(tmp_path):
    """The LaTeX inside the $$ is LaTeX, not only MathJax (same engine as test_steps)."""
    engine = _engine()
    if engine is None:
        pytest.skip("no LaTeX engine installed")
    programs = [matcalc.parse(BACKPROP, let={"f": "function"}), matcalc.parse("a = W*h; sum(a)"),
                matcalc.parse("x'*A*x"), matcalc.parse(open("examples/gaussian.mc").read())]
    body = "\n\n".join(_math(p._repr_latex_()) if p.definitions else "$" + _math(p._repr_latex_()) + "$"
                       for p in programs)
    doc = ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
           + body + "\n\\end{document}\n")
    (tmp_path / "programs.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "programs.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
