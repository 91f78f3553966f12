"""The NumPy module of docs/reference.md §3: the shared code printer with the NumPy table.

Layer L2: imports code and targets.  Kept as the NumPy entry point (and its
helpers, which the elementwise registry's NumPy spellings call).
"""
from __future__ import annotations

from .code import module_source
from .targets import NUMPY

HELPERS = {name: (name, NUMPY.helper_source(name)) for name in NUMPY.helpers if name != "_commutation"}


def numpy_module(d) -> str:
    """The generated NumPy module's source."""
    return module_source(d, NUMPY)
