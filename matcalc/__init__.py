"""matcalc: symbolic matrix calculus.

    >>> import matcalc
    >>> d = matcalc.grad("x'*A*x", wrt="x")
    >>> str(d.result)
    "(A + A')*x"
"""
from . import printing  # noqa: F401  (installs the text printer as str())
from .api import Derivation, differential, from_sympy, grad, hessian, jacobian, parse, to_sympy
from .errors import MatcalcError

__all__ = ["grad", "jacobian", "hessian", "differential", "parse", "from_sympy", "to_sympy", "Derivation", "MatcalcError"]
__version__ = "0.1.0"
