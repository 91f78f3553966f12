"""Errors a user can cause, each able to point at the offending text.

Layer L0: imports nothing from matcalc.  Every error a user can provoke is a
MatcalcError; anything else escaping is a bug.  `render` draws the
line/column/caret message the CLI prints.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A stretch of the source text: 0-based offsets, 1-based line/column."""
    start: int
    end: int
    line: int
    column: int

    @staticmethod
    def at(text: str, start: int, end: int | None = None) -> "Span":
        start = max(0, min(start, len(text)))
        end = start + 1 if end is None else max(start, end)
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        return Span(start, end, line, column)


class MatcalcError(Exception):
    """Base of every user-facing error; `kind` heads the message."""
    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 source: str | None = None, origin: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source      # the text the span points into, when it is not the program
        self.origin = origin      # and what to call it (--wrt, <stdin>, a file name)

    def render(self, source: str | None = None, origin: str = "input") -> str:
        source = self.source if self.source is not None else source
        origin = self.origin or origin
        out = [f"{self.kind}: {self.message}"]
        if self.span is not None and source is not None:
            out.append(f"  --> {origin}, line {self.span.line}, column {self.span.column}")
            lines = source.split("\n")
            text = lines[self.span.line - 1] if self.span.line - 1 < len(lines) else ""
            col = self.span.column - 1
            shown, offset = _window(text, col)
            width = max(1, min(self.span.end - self.span.start, len(text) - col, 60))
            out.append("   | " + shown)
            out.append("   | " + " " * (col - offset) + "^" * width)
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


def _window(text: str, col: int, width: int = 100) -> tuple[str, int]:
    """A readable slice of a (possibly enormous) line around column `col`."""
    if len(text) <= width:
        return text, 0
    start = max(0, min(col - width // 2, len(text) - width))
    return text[start:start + width], start


class ParseError(MatcalcError):
    kind = "syntax error"


class ShapeError(MatcalcError):
    kind = "shape error"


class NameError_(MatcalcError):
    kind = "name error"


class UsageError(MatcalcError):
    """Valid input that asks for something else (e.g. grad of a non-scalar)."""
    kind = "error"


class LimitError(MatcalcError):
    kind = "limit exceeded"


class UnsupportedError(MatcalcError):
    """Well-formed input that matcalc cannot differentiate yet; says so plainly."""
    kind = "not supported"
