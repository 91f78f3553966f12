"""The Python API of interface.md §4: parse, grad, jacobian, hessian.

Layer L5: imports everything below.  `Derivation` adds the output methods
(latex, pretty, numpy, function, check) to the derivation record.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Iterable

from . import derive
from . import jacobian as jacobians
from .errors import UsageError
from .engine.simplify import Simplifier
from .expr import Program, Symbol
from .printing.latex import derivation_latex, display_math
from .printing.numpy_code import numpy_module
from .printing.pretty import derivation_pretty
from .printing.steps import Steps, steps_latex, steps_pretty
from .printing.text import derivation_text
from .syntax.elaborate import Decl, parse_kind, parse_program  # noqa: F401 (parse_program used by the CLI)

__all__ = ["parse", "grad", "jacobian", "hessian", "Derivation", "from_sympy", "to_sympy"]


def _declarations(let) -> dict[str, Decl]:
    if not let:
        return {}
    if isinstance(let, dict):
        return {name: parse_kind(name, kind) for name, kind in let.items()}
    raise UsageError("let= takes a dict such as {'A': 'matrix(n, n)'}")


def parse(text: str, let: dict[str, str] | None = None) -> Program:
    """Parse a program (or one expression) into typed, shaped IR."""
    return parse_program(text, _declarations(let))


class Derivation(derive.Derivation):
    """A derivation with its printers: see interface.md §4."""

    @classmethod
    def of(cls, d: derive.Derivation) -> "Derivation":
        out = cls(**vars(d))
        out.steps = Steps(d.steps, out)      # a list that Jupyter renders as the align* derivation
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

    def numpy(self) -> str:
        """The module of interface.md §3.  The forward pass is written in the
        simplifier's canonical form, the form the derivatives are in, so that
        value_and_grad computes each shared subexpression once."""
        simplify = Simplifier()
        program = self.program
        canonical = replace(program, definitions=tuple((s, simplify(b)) for s, b in program.definitions),
                            output=program.output if isinstance(program.output, Symbol)
                            else simplify(program.output))
        return numpy_module(replace(self, program=canonical))

    def function(self) -> SimpleNamespace:
        """The generated module's functions, compiled (code matcalc generated, nothing else)."""
        namespace: dict = {}
        exec(compile(self.numpy(), "<matcalc generated>", "exec"), namespace)
        return SimpleNamespace(**{k: v for k, v in namespace.items()
                                  if callable(v) and not k.startswith("_") and k != "np"})

    def check(self, seed: int = 0) -> "CheckReport":  # noqa: F821
        from .check import check_derivation      # NumPy is imported by the check, not by the package
        return check_derivation(self, seed)

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


def grad(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None) -> Derivation:
    """∂L/∂X for a scalar L, by differentials and the Frobenius rewrite."""
    return Derivation.of(derive.grad(_program(expr, let), _names(wrt)))


def jacobian(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None) -> Derivation:
    """∂f/∂x with d vec(f) = J d vec(x): len(f) × len(x) for vectors, Kronecker forms for matrices."""
    return Derivation.of(jacobians.jacobian(_program(expr, let), _names(wrt)))


def hessian(expr: str | Program, wrt: str | Iterable[str], let: dict[str, str] | None = None) -> Derivation:
    """∂²L/∂x² for a scalar L: the Jacobian of the gradient (vec order for matrices)."""
    return Derivation.of(jacobians.hessian(_program(expr, let), _names(wrt)))


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
