"""The Python API of docs/reference.md §4: parse, grad, jacobian, hessian.

Layer L5: imports everything below.  `Derivation` adds the output methods
(latex, pretty, code and its targets numpy/jax/torch/array_api, function, check,
compare)
and the layout to the derivation record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Iterable

from . import derive
from . import differentiate
from . import jacobian as jacobians
from .errors import MatcalcError, UsageError  # noqa: F401 (MatcalcError: for the web layer)
from .engine.simplify import Simplifier
from .expr import Program, Symbol
from .layout import DENOMINATOR, LAYOUTS, as_denominator, check_layout, in_layout, misshapen
from .printing.code import module_source
from .printing.latex import derivation_latex, display_math, to_latex
from .printing.pretty import derivation_pretty, to_pretty
from .printing.steps import Steps, steps_json, steps_latex, steps_pretty, steps_text
from .printing.targets import TARGETS
from .printing.text import derivation_text, to_text
from .syntax.elaborate import (Decl, parse_declaration,  # noqa: F401 (used by the CLI and web)
                               parse_kind, parse_program)

__all__ = ["parse", "grad", "jacobian", "hessian", "differential", "Derivation", "from_sympy", "to_sympy", "LAYOUTS", "as_json"]

# What `--format F` prints, for every F but json: as_json carries them all.
CODE_FORMATS = {"numpy": "numpy", "jax": "jax", "torch": "torch", "array-api": "array-api"}   # --format -> target
FORMATS = ("text", "pretty", "latex", *CODE_FORMATS)


def _declarations(let) -> dict[str, Decl]:
    if not let:
        return {}
    if isinstance(let, dict):
        return {name: parse_kind(name, kind) for name, kind in let.items()}
    raise UsageError("let= takes a dict such as {'A': 'matrix(n, n)'}")


def parse(text: str, let: dict[str, str] | None = None) -> Program:
    """Parse a program (or one expression) into typed, shaped IR."""
    return parse_program(text, _declarations(let))


@dataclass
class Derivation(derive.Derivation):
    """A derivation with its printers: see docs/reference.md §4."""
    layout: str = DENOMINATOR          # or "numerator": every gradient transposed

    @classmethod
    def of(cls, d: derive.Derivation, layout: str = DENOMINATOR) -> "Derivation":
        out = replace(in_layout(cls(**vars(d)), layout), layout=layout)
        out.steps = Steps(out.steps, out)      # a list that Jupyter renders as the align* derivation
        return out

    def text(self) -> str:
        return derivation_text(self)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:       # not the dataclass's listing of every step
        return f"<Derivation: {self.command} by {', '.join(self.wrt)}: {self.text()}>"

    def latex(self, steps: bool | str = False) -> str:
        """LaTeX of the result; steps=True (or "all") gives the align* derivation."""
        if steps:
            return steps_latex(self, "all" if steps == "all" else "brief")
        return derivation_latex(self)

    def pretty(self, steps: bool | str = False) -> str:
        """Unicode mathematics for a terminal (for reading, not for parsing back):
        `∂L/∂W = 2 (W h + b − y) hᵀ`; steps=True (or "all") the derivation."""
        if steps:
            return steps_pretty(self, "all" if steps == "all" else "brief")
        return derivation_pretty(self)

    def code(self, target: str = "numpy") -> str:
        """The module of docs/reference.md §3 for a target: "numpy", "jax", "torch" or
        "array-api".  The forward pass is written in the simplifier's canonical
        form, the form the derivatives are in, so that value_and_grad computes
        each shared subexpression once."""
        if target not in TARGETS:
            raise UsageError(f"unknown code target {target!r}: choose one of {', '.join(TARGETS)}")
        simplify = Simplifier()
        program = self.program
        canonical = replace(program, definitions=tuple((s, simplify(b)) for s, b in program.definitions),
                            output=program.output if isinstance(program.output, Symbol)
                            else simplify(program.output))
        return module_source(replace(self, program=canonical), TARGETS[target])

    def numpy(self) -> str:
        """The NumPy module (imports only numpy)."""
        return self.code("numpy")

    def jax(self) -> str:
        """The JAX module (imports only jax.numpy)."""
        return self.code("jax")

    def torch(self) -> str:
        """The PyTorch module (imports only torch)."""
        return self.code("torch")

    def array_api(self) -> str:
        """The array API module: the namespace comes from array_api_compat at call time."""
        return self.code("array-api")

    def function(self, target: str = "numpy") -> SimpleNamespace:
        """The generated module's functions, compiled (code matcalc generated, nothing else);
        a target other than NumPy needs its library installed."""
        namespace: dict = {}
        exec(compile(self.code(target), "<matcalc generated>", "exec"), namespace)
        return SimpleNamespace(**{k: v for k, v in namespace.items()
                                  if callable(v) and not k.startswith("_") and k not in TARGETS[target].bound})

    def check(self, seed: int = 0) -> "CheckReport":  # noqa: F821
        """The finite-difference check; a numerator-layout result is transposed
        back first, so a result in the wrong layout fails."""
        from .check import CheckReport, check_derivation   # NumPy is imported by the check, not by the package
        wrong = misshapen(self, self.layout)
        if wrong:
            return CheckReport(False, math.inf, {name: math.inf for name in self.results}, wrong)
        return check_derivation(as_denominator(self, self.layout), seed)

    def compare(self, claim, seed: int = 0) -> "Verdict":  # noqa: F821
        """The verdict of --claim on a derivative of your own, in the input language and the
        expression's names: d.compare("2*A*x").  Several variables: {"W": ..., "b": ...}, or
        a list of formulas ("b = ..." labels one).  The verdict has .agrees, .diagnosis
        (how it differs: transposed, factor, sign, ...), .worst_error and str()."""
        if self.command == "differential":
            raise UsageError("--claim compares a derivative (grad, jacobian, hessian); a differential is "
                             "verified with --check", hint="matcalc grad ... --claim FORMULA")
        from .claim import compare       # NumPy is imported by the comparison, not by the package
        return compare(self, claim, seed)

    def objective(self, **data) -> "Objective":  # noqa: F821
        """fun(theta), jac(theta), hessp(theta, p), unflatten(theta) and x0 over the variables
        (this derivation's wrt) flattened into one vector, the other inputs fixed to `data`:
        what scipy.optimize.minimize takes (Newton-CG, trust-ncg, L-BFGS-B).  hessp is the
        generated hvp (no Hessian formed).  A variable given in data is the starting point x0."""
        from .optimize import Objective       # NumPy is imported by the objective, not by the package
        return Objective(self, data)

    def to_sympy(self, symbols: dict | None = None):
        """The result as a SymPy matrix expression ({name: expression} for several wrt);
        named intermediates are inlined.  See matcalc.interop.sympy_bridge."""
        return _sympy_bridge().derivation_to_sympy(self, symbols)

    def _repr_latex_(self) -> str:
        return display_math(self.latex())


def _program(expr: str | Program, let) -> Program:
    return expr if isinstance(expr, Program) else parse(expr, let)


def _names(wrt: str | Iterable[str]) -> list[str]:
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    if not names:
        raise UsageError("say which variable to differentiate by: wrt='X'")
    return names


def grad(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None,
         layout: str = DENOMINATOR) -> Derivation:
    """∂L/∂X for a scalar L, by differentials and the Frobenius rewrite; shaped
    like X (layout="denominator") or its transpose (layout="numerator")."""
    check_layout(layout)
    return Derivation.of(derive.grad(_program(expr, let), _names(wrt)), layout)


def jacobian(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None,
             layout: str = DENOMINATOR) -> Derivation:
    """∂f/∂x with d vec(f) = J d vec(x): len(f) × len(x) for vectors, Kronecker forms for matrices
    (in either layout: this already is numerator layout)."""
    check_layout(layout)
    return Derivation.of(jacobians.jacobian(_program(expr, let), _names(wrt)), layout)


def hessian(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None,
            layout: str = DENOMINATOR) -> Derivation:
    """∂²L/∂x² for a scalar L: the Jacobian of the gradient (vec order for matrices);
    symmetric, so the same in either layout."""
    check_layout(layout)
    return Derivation.of(jacobians.hessian(_program(expr, let), _names(wrt)), layout)


def differential(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None,
                 layout: str = DENOMINATOR) -> Derivation:
    """df in terms of dX (d(inv(X)) = -inv(X)*dX*inv(X)); several variables give the total
    differential, d.total, and d.results[X] is its part in dX, what jvp_X computes.
    The same in either layout (a differential has no layout)."""
    check_layout(layout)
    return Derivation.of(differentiate.differential(_program(expr, let), _names(wrt)), layout)


def formatted(d: Derivation, fmt: str, steps: str | None = None) -> str:
    """What `--format fmt [--steps[=steps]]` prints (without the check's comment lines)."""
    if fmt == "latex":
        return d.latex(steps=steps or False)
    if fmt == "pretty":
        return d.pretty(steps=steps or False)
    if fmt in CODE_FORMATS:
        return d.code(CODE_FORMATS[fmt])
    return steps_text(d, steps) if steps else d.text()


def as_json(d: Derivation, report=None, steps: str | None = None, verdict=None) -> dict:
    """The object `--format json` prints, which the web page reads: inputs (kind,
    shape, whether declared), definitions, results as text/latex/pretty, steps,
    every other --format's output, the check's report and the --claim verdict
    when there are."""
    program = d.program
    formats = {fmt: formatted(d, fmt, steps) for fmt in FORMATS}
    out = {
        "command": d.command,
        "inputs": {n: {"kind": s.kind, "shape": list(s.shape), "declared": n in program.declared}
                   for n, s in program.inputs.items()},
        "functions": sorted(program.functions),
        "definitions": [{"name": s.name, "text": to_text(b), "shape": list(s.shape)}
                        for s, b in program.definitions],
        "wrt": d.wrt,
        "layout": d.layout,
        "results": {n: {"text": to_text(g), "latex": to_latex(g), "pretty": to_pretty(g), "shape": list(g.shape)}
                    for n, g in d.results.items()},
        **({"total": {"text": to_text(d.total), "latex": to_latex(d.total), "pretty": to_pretty(d.total),
                      "shape": list(d.total.shape)}} if d.command == "differential" else {}),
        "adjoints": [{"name": g.name, "text": to_text(b), "latex": to_latex(b)} for g, b in d.named],
        "steps": steps_json(d),
        "code": formats["numpy"],
        "formats": formats,
    }
    if report is not None:
        out["check"] = {"ok": report.ok, "worst_relative_error": report.worst_error,
                        "per_variable": report.per_variable, "points": report.points,
                        "generated_code": report.generated, "message": report.message}
    if verdict is not None:
        out["claim"] = {**verdict.as_json(), "message": verdict.message}
    return out


# SymPy interop.  The bridge imports SymPy, which takes longer than the rest of
# matcalc together: it is loaded on the first call, never by `import matcalc`.

def _sympy_bridge():
    from .interop import sympy_bridge
    return sympy_bridge


def from_sympy(e, rename: dict[str, str] | None = None) -> Program:
    """The Program of a SymPy matrix expression, ready for grad/jacobian/hessian:
    matcalc.grad(matcalc.from_sympy(sympy.log(sympy.det(X))), wrt="X").
    `rename` maps SymPy names that are not valid matcalc names to ones that are."""
    return _sympy_bridge().from_sympy(e, rename)


def to_sympy(e, symbols: dict | None = None):
    """The SymPy form of an expression (or of a Program's output, definitions inlined).
    `symbols` maps names of inputs and dimensions to the SymPy objects to use."""
    return _sympy_bridge().to_sympy(e, symbols)
