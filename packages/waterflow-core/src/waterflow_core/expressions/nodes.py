"""The syntax tree the parser builds and the compiler turns into closures.

The tree has GitHub's shape, which matters for the depth limit: ``a.b`` is an index with a
string literal, ``*`` is an index with a wildcard, parentheses make no node, and a chain of the
same logical operator (``a && b && (c && d)``) is one node with all operands.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_DEPTH",
    "AllOf",
    "AnyOf",
    "Compare",
    "ContextRef",
    "FunctionCall",
    "Index",
    "Literal",
    "Node",
    "Not",
    "TooDeep",
    "Wildcard",
]

MAX_DEPTH = 50  # GitHub's ExpressionConstants.MaxDepth: levels of the tree, leaves included


class TooDeep(Exception):
    """The tree grew deeper than :data:`MAX_DEPTH` (the parser reports it as a syntax error)."""


class Node:
    """A tree node; ``height`` counts the levels below and including it."""

    __slots__ = ("height",)
    height: int

    def __init__(self, *children: Node) -> None:
        height = 1 + max((child.height for child in children), default=0)
        if height > MAX_DEPTH:
            # Checked as the tree is built, bottom-up, so no later pass ever recurses too deep.
            raise TooDeep
        self.height = height

    def __repr__(self) -> str:
        # Every field, so that equal reprs mean equal trees: the fast parser's tests compare
        # its trees with Lark's this way (Literal values by repr: 1, 1.0 and True differ).
        fields = [
            f"{name}={getattr(self, name)!r}"
            for cls in reversed(type(self).__mro__)
            for name in getattr(cls, "__slots__", ())
        ]
        return f"{type(self).__name__}({', '.join(fields)})"


def _height(left: Node, right: Node) -> int:
    """The height of a node over ``left`` and ``right``; raises :class:`TooDeep` past the limit."""
    # Not max(): a call costs more than the node's other work.
    height = (left.height if left.height > right.height else right.height) + 1
    if height > MAX_DEPTH:
        raise TooDeep
    return height


class Literal(Node):
    """``null``, a boolean, a number or a string written in the expression."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        # Leaves and the small nodes below set their height directly rather than through
        # Node.__init__'s generic max(): they are most of every tree, and parsing builds them.
        self.height = 1
        self.value = value


class ContextRef(Node):
    """A named value such as ``steps``; ``name`` is lower-cased, ``position`` 1-based."""

    __slots__ = ("name", "position")

    def __init__(self, name: str, position: int) -> None:
        self.height = 1
        self.name = name
        self.position = position


class Wildcard(Node):
    """The ``*`` of ``a.*`` / ``a[*]``."""

    __slots__ = ()

    def __init__(self) -> None:
        self.height = 1


class Index(Node):
    """``base[key]`` and ``base.key`` (then ``key`` is a string literal) and ``base.*``."""

    __slots__ = ("base", "key")

    def __init__(self, base: Node, key: Node) -> None:
        self.height = _height(base, key)
        self.base = base
        self.key = key


class Not(Node):
    """``!operand``."""

    __slots__ = ("operand",)

    def __init__(self, operand: Node) -> None:
        height = operand.height + 1
        if height > MAX_DEPTH:
            raise TooDeep
        self.height = height
        self.operand = operand


class Compare(Node):
    """``left op right`` for ``== != < <= > >=``."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Node, right: Node) -> None:
        self.height = _height(left, right)
        self.op = op
        self.left = left
        self.right = right


class _Logical(Node):
    __slots__ = ("operands",)
    operands: list[Node]

    def __init__(self, left: Node, right: Node) -> None:
        # GitHub flattens a nested node of the same operator into its parent. The parser hands
        # over `left` and `right` and never uses them again, so this node takes over a nested
        # node's operand list instead of copying it: a chain of n operators stays O(n).
        cls = type(self)
        operands: list[Node]
        if type(left) is cls:
            operands = left.operands
            height = left.height
        else:
            operands = [left]
            height = 1 + left.height
        if type(right) is cls:
            operands.extend(right.operands)
            height = max(height, right.height)
        else:
            operands.append(right)
            height = max(height, 1 + right.height)
        if height > MAX_DEPTH:
            raise TooDeep
        self.height = height
        self.operands = operands


class AllOf(_Logical):
    """``a && b && ...``: the first falsy operand, else the last."""

    __slots__ = ()


class AnyOf(_Logical):
    """``a || b || ...``: the first truthy operand, else the last."""

    __slots__ = ()


class FunctionCall(Node):
    """``name(args...)``; ``name`` is lower-cased, ``position`` is where the name starts."""

    __slots__ = ("args", "name", "position")

    def __init__(self, name: str, args: tuple[Node, ...], position: int) -> None:
        super().__init__(*args)
        self.name = name
        self.args = args
        self.position = position
