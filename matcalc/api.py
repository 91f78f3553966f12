"""The Python API of interface.md §4: parse, grad, jacobian, hessian.

Layer L5: imports everything below.  `Derivation` adds the output methods
(latex, code and its targets numpy/jax/torch/array_api, function, check) to
the derivation record.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Iterable

from . import derive
from . import jacobian as jacobians
from .check import CheckReport, check_derivation
from .errors import UsageError
from .engine.simplify import Simplifier
from .expr import Program, Symbol
from .printing.latex import derivation_latex
from .printing.code import module_source
from .printing.targets import TARGETS
from .printing.steps import steps_latex
from .printing.text import derivation_text
from .syntax.elaborate import Decl, parse_kind, parse_program  # noqa: F401 (parse_program used by the CLI)

__all__ = ["parse", "grad", "jacobian", "hessian", "Derivation"]


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
        return cls(**vars(d))

    def text(self) -> str:
        return derivation_text(self)

    def __str__(self) -> str:
        return self.text()

    def latex(self, steps: bool | str = False) -> str:
        """LaTeX of the result; steps=True (or "all") gives the align* derivation."""
        if steps:
            return steps_latex(self, "all" if steps == "all" else "brief")
        return derivation_latex(self)

    def code(self, target: str = "numpy") -> str:
        """The module of interface.md §3 for a target: "numpy", "jax", "torch" or
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

    def check(self, seed: int = 0) -> CheckReport:
        return check_derivation(self, seed)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex() + "$$"


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
