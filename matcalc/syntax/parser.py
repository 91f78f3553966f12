"""The lark parser for grammar/matcalc.lark, and its errors as ParseErrors.

Layer L2: imports errors.  The grammar ships inside the package
(matcalc.grammar) and is loaded from there once, on first use.
"""
from __future__ import annotations

import functools
import re
from importlib import resources

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import LimitError, ParseError, Span

MAX_INPUT_CHARS = 100_000
MAX_NESTING = 200          # parentheses and calls, nested
MAX_TREE_DEPTH = 2_000     # operators nested in any way (a + a + ... included)

# What a user would call each terminal, for "expected ..." messages.
_TOKEN_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "INT": "an integer", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'",
    "SLASH": "'/'", "COLON": "':'", "EQUAL": "'='", "SEMICOLON": "';'",
    "_NEWLINE": "end of line", "$END": "end of input", "QUOTE": "'",
    "DOT_T": "'.T'", "CIRCUMFLEX": "'^'", "AT": "'@'", "DECL_HEAD": "a declaration",
}


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("matcalc.grammar").joinpath("matcalc.lark").read_text("utf-8")
    # cache=True keeps the built LALR tables in the temp directory: start-up is interactive
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False, cache=True)


def parse_tree(text: str) -> Tree:
    """Parse text into a lark tree, or raise ParseError/LimitError with a span."""
    if len(text) > MAX_INPUT_CHARS:
        raise LimitError(f"the input has {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,}",
                         Span.at(text, MAX_INPUT_CHARS))
    _check_nesting(text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _parse_error(text, exc) from None
    _check_depth(text, tree)
    return tree


def _check_nesting(text: str) -> None:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise LimitError(f"parentheses nest deeper than {MAX_NESTING} levels", Span.at(text, i))
        elif ch == ")":
            depth = max(0, depth - 1)


def _check_depth(text: str, tree: Tree) -> None:
    stack = [(tree, 1)]
    while stack:
        t, d = stack.pop()
        if d > MAX_TREE_DEPTH:
            start = getattr(t.meta, "start_pos", 0) if hasattr(t, "meta") else 0
            raise LimitError(f"the expression nests deeper than {MAX_TREE_DEPTH} operations",
                             Span.at(text, start))
        stack.extend((c, d + 1) for c in t.children if isinstance(c, Tree))


def _describe(token) -> str:
    if token.type == "$END" or token.type == "_NEWLINE" or token.value == "":
        return _TOKEN_NAMES.get(token.type, "end of input")
    return repr(str(token.value)) if len(str(token.value)) < 30 else repr(str(token.value)[:27] + "...")


def _expected(names) -> str:
    shown = sorted({_TOKEN_NAMES.get(n, n.lower()) for n in names if not n.startswith("__")})
    if not shown:
        return ""
    if len(shown) > 6:
        return ""
    return "expected " + ", ".join(shown)


def _parse_error(text: str, exc: UnexpectedInput) -> ParseError:
    pos = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {ch!r}"
        hint = _char_hint(ch)
        return ParseError(msg, Span.at(text, pos), hint)
    if isinstance(exc, UnexpectedEOF):
        return ParseError("unexpected end of input", Span.at(text, len(text)), _expected(exc.expected))
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            pos = len(text)
        where = Span.at(text, pos, pos + max(1, len(str(tok.value))))
        if tok.type == "$END" or tok.type == "_NEWLINE":
            return ParseError("the expression ends too early", where, _expected(exc.expected))
        return ParseError(f"unexpected {_describe(tok)}", where, _token_hint(text, pos, str(tok.value))
                          or _expected(exc.expected))
    return ParseError("cannot parse this", Span.at(text, pos))


def _token_hint(text: str, pos: int, value: str) -> str | None:
    """What a token out of place usually means, from the text before it (NumPy and PyTorch habits)."""
    before = text[:pos].rstrip()
    if value == "*" and before.endswith("*"):
        return "a power is written ^ (A^2, a matrix power) or .^ (x.^2, entry by entry)"
    if value == "=" and re.search(r"[(,]\s*(axis|dim|keepdims)\s*$", before):
        return "an axis is the second argument, numbered as in MATLAB: sum(X, 1) down each column, sum(X, 2) along each row"
    return None


def _char_hint(ch: str) -> str | None:
    hints = {
        "[": "matrices are named, not written out: declare them, e.g. --let 'A: matrix(n, n)'",
        "{": "braces are not part of the language; use parentheses",
        "|": "use abs() for absolute values and norm1()/norm2() for norms",
        "!": "there is no factorial or negation '!'",
        "\"": "the language has no strings",
        "=": "'=' defines a name: write `name = expression` on its own line",
    }
    if ch in hints:
        return hints[ch]
    if ch and not ch.isascii():
        return "the only non-ASCII operator is ⊙ (Hadamard product); Greek letters are written as words (alpha, lambda)"
    return None
