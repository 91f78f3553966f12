"""Printers: text (parses back), LaTeX, NumPy code.  Importing this package
installs the text printer as str() of every expression, and the LaTeX printer
as its _repr_latex_ (Jupyter's rich display)."""
from . import latex  # noqa: F401  (installs _repr_latex_)
from .text import TextPrinter, to_text

__all__ = ["TextPrinter", "to_text"]
