"""Printers: text (parses back), LaTeX, NumPy code.  Importing this package
installs the text printer as str() of every expression."""
from .text import TextPrinter, to_text

__all__ = ["TextPrinter", "to_text"]
