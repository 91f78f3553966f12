"""The derivation as a person writes it: --steps in text, pretty and LaTeX.

Layer L2: imports the text, pretty and LaTeX printers; reads Step records (steps.py).
A block per differentiated definition: `dL = ...` then one `= ...` line per
identity, with the identity named.  "brief" merges the minor moves (splitting
a sum, moving a scalar) into the next line; "all" shows every rewrite.
`Steps` is the list d.steps is: Jupyter renders it as the LaTeX derivation.
"""
from __future__ import annotations

import re

from ..steps import NUMERATOR_LAYOUT, Step
from .latex import align, derivative_label, display_math, latex_name, result_label, to_latex
from .pretty import LABELS, align_on_equals, derivative_text, pretty_name, to_pretty
from .text import to_text

MINOR = {"linearity", "move a scalar"}


def visible(steps: list[Step], verbosity: str = "brief") -> list[tuple[Step, list[str]]]:
    """The steps to show, each with the names of minor rules merged into it."""
    out: list[tuple[Step, list[str]]] = []
    carried: list[str] = []
    for s in steps:
        if verbosity == "brief" and s.kind == "rewrite" and s.rule.name in MINOR:
            carried.append(s.rule.name)
            continue
        out.append((s, carried))
        carried = []
    return out


def _lines(d, verbosity, show, why) -> list[tuple[tuple | None, str, str]]:
    """(left side, right side, explanation) per displayed line; a left side is a
    label (what, name), spelled by each printer (_text_label, _latex_label)."""
    rows = []
    for s, merged in visible(d.steps, verbosity):
        if s.kind in ("differential", "forward"):
            rows.append((_differential_label(d, s), show(s.before), ""))
            rows.append((None, show(s.after), why(s, merged)))
        elif s.kind in ("adjoint", "define"):
            rows.append((("expr", show(s.before)), show(s.after), why(s, merged)))
        elif s.kind == "identify":
            # a Hessian's derivation identifies the gradient first, then its Jacobian;
            # the identification names its rule only when it is not the plain one
            what = "result" if d.command == "grad" or s.rule.name == "Jacobian" else "gradient"
            stated = why(s, merged) if s.rule is NUMERATOR_LAYOUT else ""
            rows.append(((what, s.note), show(s.after), stated))
        else:
            rows.append((None, show(s.after), why(s, merged)))
    return rows


def _differential_label(d, s) -> tuple:
    if s.kind == "differential":
        return ("dL", "")
    if s.definition is not None:                     # a definition's forward step: da = ...
        return ("d", s.definition[0])
    return ("dgrad", d.wrt[0]) if d.command == "hessian" else ("df", "")


def _text_label(label, d, name=str) -> str:
    """A label in text (name=str) or pretty (name=pretty_name) form."""
    if label is None:
        return ""
    what, x = label
    if what == "expr":
        return x
    if what == "result":
        return derivative_text(d, x, name)
    x = name(x)
    return {"dL": "dL", "d": f"d{x}", "df": "df", "dgrad": f"d(∂L/∂{x})",
            "gradient": LABELS["grad"].format(x)}[what]


def _latex_label(label, command) -> str:
    if label is None:
        return ""
    what, name = label
    if what == "expr":
        return name
    if what in ("result", "gradient"):
        return derivative_label(command if what == "result" else "grad", name)
    return r"\mathrm{d}" + {"dL": "L", "df": "f", "d": latex_name(name),
                             "dgrad": rf"\left({derivative_label('grad', name)}\right)"}[what]


def _explainer(show, name):
    """The explanation column of the text steps, definitions shown by `show`."""
    def why(s: Step, merged: list[str]) -> str:
        if s.kind in ("differential", "forward"):
            base = s.rule.name
            if s.note:
                base += f"; {_note(s, show, name)}"
        elif s.kind == "adjoint":
            base = f"∂L/∂{name(s.note)}, passed back to the definition of {name(s.note)}"
        elif s.kind == "define" or s.rule is NUMERATOR_LAYOUT:
            base = s.rule.name
        elif s.kind == "symmetric":
            base = _symmetric_why(s)
        else:
            base = s.rule.display
        if merged:
            base += f"; {', '.join(dict.fromkeys(merged))}"
        return base
    return why


def _note(s: Step, show, name) -> str:
    """A differential's note, its `where a = ...` in the printer's own form."""
    if s.definition is None:
        return s.note
    sym, body = s.definition
    return s.note.replace(f"where {sym} = {to_text(body)}", f"where {name(sym)} = {show(body)}", 1)


def steps_text(d, verbosity: str = "brief") -> str:
    return align_on_equals([(_text_label(l, d), r, w)
                            for l, r, w in _lines(d, verbosity, to_text, _explainer(to_text, str))])


def steps_pretty(d, verbosity: str = "brief") -> str:
    """The text steps in Unicode mathematics, aligned on `=`."""
    return align_on_equals([(_text_label(l, d, pretty_name), r, w)
                            for l, r, w in _lines(d, verbosity, to_pretty, _explainer(to_pretty, pretty_name))])


def _symmetric_why(s: Step) -> str:
    """Why a symmetric variable's gradient is sym(G), and not the Cookbook's G + Gᵀ − diag(G)."""
    why = (f"{s.note} is symmetric, so only symmetric d{s.note} count: ∂L/∂{s.note} = sym(G) = ½(G + Gᵀ)"
           + ("; this G is symmetric already" if s.before == s.after else ""))
    return f"{why}; not G + Gᵀ − diag(G), the derivative by the distinct entries, which is no " \
           "gradient for the Frobenius product (Srinivasan & Panda, arXiv:1911.06491)"


def _latex_why(s: Step, merged: list[str]) -> str:
    """The explanation column: text mode for words, math for the definition."""
    if s.kind == "symmetric":
        return (latex_name(s.note) + r"\ \text{symmetric: } \operatorname{sym}(G) = \tfrac12(G + G^\top)"
                + (r"\text{, already symmetric}" if s.before == s.after else "")
                + r"\text{ (not } G + G^\top - \operatorname{diag}(G)\text{)}")
    text = "adjoint, passed back" if s.kind == "adjoint" else s.rule.name
    if s.kind in ("differential", "forward") and s.definition is not None:
        sym, body = s.definition
        return rf"\text{{{_escape(text)}, where }} {latex_name(sym)} = {to_latex(body)}"
    return r"\text{" + _escape(text) + "}"


def steps_latex(d, verbosity: str = "brief") -> str:
    out = []
    for lhs, rhs, why in _lines(d, verbosity, to_latex, _latex_why):
        if lhs is not None and lhs[0] == "result":
            label = result_label(d, lhs[1])
        else:
            label = _latex_label(lhs, d.command)
        out.append(f"{label} &= {rhs}" + (f" && {why}" if why else ""))
    return align(out)


class Steps(list):
    """d.steps: still the list of Step records (docs/reference.md §4), which Jupyter
    shows as the derivation, the align* of d.latex(steps=True)."""

    def __init__(self, steps, derivation):
        super().__init__(steps)
        self.derivation = derivation     # steps_latex needs its command (grad, hessian, ...)

    def _repr_latex_(self) -> str:
        return display_math(steps_latex(self.derivation))


def _escape(text: str) -> str:
    return re.sub(r"([#$%&_{}])", r"\\\1", text)


def steps_json(d) -> list[dict]:
    return [{"kind": s.kind, "rule": s.rule.name, "identity": s.rule.display, "note": s.note,
             "before": to_text(s.before), "expr": to_text(s.after)} for s in d.steps]

