"""JMESPath expressions with bounded complexity: the one place an expression is compiled.

jmespath's parser and interpreter recurse once per nesting level, and a left-nested chain
(``a|a|a...``, ``a.a.a...``) parses fine but is as deep as it is long. So ``"(" * 5000``,
``"!" * 10000`` or 5,000 pipes raised ``RecursionError`` (a 500) when saved, evaluated or
checked. Expressions are therefore bounded by length (``MAX_EXPRESSION_CHARS``) and by the
depth of their syntax tree (``MAX_EXPRESSION_DEPTH``), both checked without recursion, and a
``RecursionError`` inside the parser itself is reported as "too deeply nested".

Pure: jmespath and stdlib only.
"""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

__all__ = ["MAX_EXPRESSION_CHARS", "MAX_EXPRESSION_DEPTH", "compile_bounded", "tree_depth"]

MAX_EXPRESSION_CHARS = 10_000
MAX_EXPRESSION_DEPTH = 60


def compile_bounded(expression: str) -> ParsedResult:
    """Compile ``expression`` or raise ``ValueError`` with a readable one-line reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression too long: {len(expression)} characters, the limit is {MAX_EXPRESSION_CHARS}")
    try:
        parsed = jmespath.compile(expression)
    except RecursionError:
        raise ValueError(f"expression too complex: nested deeper than {MAX_EXPRESSION_DEPTH} levels") from None
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath: {one_line(exc)}") from None
    if tree_depth(parsed.parsed) > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"expression too complex: nested deeper than {MAX_EXPRESSION_DEPTH} levels")
    return parsed


def tree_depth(node: Any) -> int:
    """Depth of a jmespath syntax tree, walked with an explicit stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if not isinstance(current, dict):
            continue
        deepest = max(deepest, depth)
        for child in current.get("children", ()):
            stack.append((child, depth + 1))
    return deepest


def one_line(exc: Exception) -> str:
    """jmespath messages end with the expression and a caret line; keep them on one line."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and set(line) != {"^"})
