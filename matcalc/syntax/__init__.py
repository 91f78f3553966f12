"""Text to IR: the lark parser and the elaboration (kinds, shapes, nodes)."""
from .elaborate import parse_program, parse_kind

__all__ = ["parse_program", "parse_kind"]
