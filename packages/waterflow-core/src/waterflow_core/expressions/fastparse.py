"""A fast path for :func:`.parser.parse`: one regex tokenizer and a precedence-climbing parser.

Lark's pure-Python LALR loop costs over 10 µs per token, which dominates validating a workflow
with hundreds of distinct expressions. This module builds *the same tree* (the classes of
``nodes.py``, built by the same constructors in the same order) in a few microseconds, for the
inputs it understands. It is an optimisation, not a second grammar: ``grammar.lark`` stays the
definition of the language, and on any doubt (a syntax error, an unknown name or function, a
wrong arity, a tree or nesting near the depth limit, a character it does not know) this module
*declines* and :func:`.parser.parse` runs Lark, which alone produces every error message,
kind and position. ``tests/test_expressions_fastparse.py`` checks tree equality with Lark
over GitHub's vectors, the reference page's examples and random expressions.

Why one context-free tokenizer suffices where the grammar needs Lark's contextual lexer: the
only context-dependent choice is a ``.``, which starts a number where an operand may stand and
is a dereference elsewhere. A valid number starting with ``.`` has a digit next, and a
dereference never has (a digit cannot start a property name), so ``.`` + digit is a number
token and any other ``.`` a dot; whichever reading is wrong in its place is a syntax error, and
this module declines it. Keywords (``true``, ``NaN`` ...) are literals only where an operand
starts; after a dot they are property names, as Lark types them.
"""

from __future__ import annotations

import math
import re
from itertools import accumulate

from .coercion import WHITESPACE, literal_number, parse_number
from .functions import FUNCTIONS
from .nodes import (
    AllOf,
    AnyOf,
    Compare,
    ContextRef,
    FunctionCall,
    Index,
    Literal,
    Node,
    Not,
    TooDeep,
    Wildcard,
)

__all__ = ["parse"]

# Groups, parentheses, indexes and argument lists nested deeper than this are left to Lark:
# parentheses make no tree level, so depth 50 does not bound them, and this parser recurses
# (a few frames per level) where Lark's LALR loop does not.
MAX_NESTING = 32

_WS = re.escape(WHITESPACE)
_NUMBER_BOUNDARY = _WS + re.escape("()[],!<>=&|")  # ends a number run (NUMBER: dots inside)
# Each match is (whitespace and token, token, bad). A token is a legal identifier; a number
# run exactly as Lark's NUMBER (its value is checked below), starting with a sign, a digit, or
# a dot and a digit; an operator, longest first; or a string. `bad` is any other character but
# whitespace. So matches cover the text but for trailing whitespace (and for whitespace before
# a bad character, which is declined anyway).
# Where Lark's NAME run goes on past a legal identifier (`a'b`, `a*`, `a+1`, `aé`) the next
# token here starts with `'`, `*`, `+` or is bad: nothing that may follow a name, so the parser
# declines, as Lark rejects the run.
_TOKENS = re.compile(
    rf"([{_WS}]*("
    r"[A-Za-z_][A-Za-z0-9_\-]*"
    rf"|(?:[0-9+\-]|\.[0-9])[^{_NUMBER_BOUNDARY}]*"  # before the operators: `.5` is no dot
    r"|\|\||&&|==|!=|<=|>=|[<>!()\[\],.*]"
    r"|'[^']*(?:''[^']*)*'"
    rf"))|([^{_WS}])",
    re.DOTALL,
)

# Token kinds, by first character (a lone "." is the dot; "." + digit a number).
_NAME, _NUMBER, _STRING = range(3)
_KINDS: dict[str, int] = {
    **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_", _NAME),
    **dict.fromkeys("0123456789+-", _NUMBER),
    "'": _STRING,
}

# Binary operators -> binding power; all associate to the left (grammar.lark's precedence).
_BINARY: dict[str, int] = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
}  # fmt: skip

_KEYWORDS: dict[str, object] = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": float("nan"),
    "Infinity": float("inf"),
}


class _Decline(Exception):
    """Not handled here: the caller parses with Lark instead."""


def parse(expression: str, allowed_contexts: frozenset[str]) -> Node | None:
    """The tree Lark would build for ``expression``, or None to have Lark parse it.

    Raises nothing for any text: every problem is a decline (an exception would be a bug).
    The caller has already checked the length limit.
    """
    found = _TOKENS.findall(expression)
    if not found:
        return Literal(None) if not expression.strip(WHITESPACE) else None  # `-> empty`
    # Columns and offsets with C-level calls: this is most of the work for a short expression.
    pieces, tokens, bad = zip(*found, strict=True)
    if any(bad):
        return None
    ends = list(accumulate(map(len, pieces)))
    if expression[ends[-1] :].strip(WHITESPACE):
        return None  # unreachable (`bad` takes any non-space character); belt and braces
    parser = _Parser([*tokens, ""], ends, allowed_contexts)  # "": the end, so lookahead is safe
    try:
        tree = parser.expression(1)
    except (_Decline, TooDeep):
        return None
    return tree if parser.at == len(tokens) else None  # else tokens are left over


class _Parser:
    """Precedence climbing over a token list; ``at`` is the index of the next token."""

    __slots__ = ("allowed", "at", "ends", "nesting", "tokens")

    def __init__(self, tokens: list[str], ends: list[int], allowed: frozenset[str]) -> None:
        self.tokens = tokens
        self.ends = ends
        self.allowed = allowed
        self.at = 0
        self.nesting = 0

    def expression(self, power: int) -> Node:
        """Operands joined by operators binding at least as tightly as ``power``."""
        tokens = self.tokens
        if tokens[self.at] == "!":
            # A loop, not recursion, so a long run of `!` costs no stack.
            start = self.at
            while tokens[self.at] == "!":
                self.at += 1
            nots = self.at - start
            left = self.operand()
            for _ in range(nots):
                left = Not(left)  # raises TooDeep past the limit: Lark then reports it
        else:
            left = self.operand()
        while True:
            op = tokens[self.at]
            bound = _BINARY.get(op)
            if bound is None or bound < power:
                return left
            self.at += 1
            right = self.expression(bound + 1)
            # The constructors Lark's callbacks call, in the same order: the && / || nodes
            # flatten as they are built, so the same calls give the same tree.
            if bound == 1:
                left = AnyOf(left, right)
            elif bound == 2:
                left = AllOf(left, right)
            else:
                left = Compare(op, left, right)

    def operand(self) -> Node:
        """A literal, or a name, call or group with its ``.x`` / ``[i]`` suffixes."""
        tokens = self.tokens
        at = self.at
        token = tokens[at]
        kind = _KINDS.get(token[:1])
        node: Node
        if kind == _NAME:
            if token in _KEYWORDS:
                self.at = at + 1
                return Literal(_KEYWORDS[token])  # a literal takes no suffix
            if tokens[at + 1] == "(":
                node = self.call(token, self.ends[at] - len(token))
            else:
                name = token.lower()
                if name not in self.allowed:
                    raise _Decline  # Lark reports the unknown named-value
                node = ContextRef(name, self.ends[at] - len(token) + 1)
                self.at = at + 1
        elif kind == _STRING:
            self.at = at + 1
            return Literal(token[1:-1].replace("''", "'"))
        elif kind == _NUMBER or (token[:1] == "." and len(token) > 1):  # a lone "." is the dot
            self.at = at + 1
            return Literal(_number(token))
        elif token == "(":  # noqa: S105 - a parser token, not a secret
            self.at = at + 1
            node = self.group(")")
        else:
            raise _Decline
        # Suffixes: `.name`, `.*`, `[*]`, `[expression]`.
        while True:
            token = tokens[self.at]
            if token == ".":  # noqa: S105 - a parser token, not a secret
                name = tokens[self.at + 1]
                if name == "*":
                    node = Index(node, Wildcard())
                elif _KINDS.get(name[:1]) == _NAME:
                    node = Index(node, Literal(name))  # as written; keywords are names here
                else:
                    raise _Decline
                self.at += 2
            elif token == "[":  # noqa: S105 - a parser token, not a secret
                if tokens[self.at + 1] == "*" and tokens[self.at + 2] == "]":
                    node = Index(node, Wildcard())
                    self.at += 3
                else:
                    self.at += 1
                    node = Index(node, self.group("]"))
            else:
                return node

    def call(self, name: str, start: int) -> Node:
        self.at += 2  # the name and "("
        args: list[Node] = []
        if self.tokens[self.at] == ")":
            self.at += 1
        else:
            args.append(self.group(None))
            while self.tokens[self.at] == ",":
                self.at += 1
                args.append(self.group(None))
            self._expect(")")
        lower = name.lower()
        arity = FUNCTIONS.get(lower)
        if arity is None or not arity[0] <= len(args) <= arity[1]:
            raise _Decline  # Lark reports the unknown function or the wrong count
        return FunctionCall(lower, tuple(args), start + 1)

    def group(self, close: str | None) -> Node:
        """An expression one nesting level down, then ``close`` (None: the caller checks)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise _Decline
        node = self.expression(1)
        self.nesting -= 1
        if close is not None:
            self._expect(close)
        return node

    def _expect(self, token: str) -> None:
        if self.tokens[self.at] != token:
            raise _Decline
        self.at += 1


def _number(token: str) -> int | float:
    """The value of a number run, exactly as the Lark path computes it; declines a bad run."""
    if len(token) < 16 and token.isdigit() and token.isascii():
        return int(token)  # the common case, without the float round trip (exact below 2**53)
    if math.isnan(parse_number(token)):
        raise _Decline  # NaN: no number (the literal NaN is a keyword); Lark reports it
    return literal_number(token)
