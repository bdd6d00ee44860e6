"""Text -> syntax tree, with GitHub's error messages.

Lark parses the grammar in ``grammar.lark`` (LALR, contextual lexer) and builds the tree while it
parses, through the callbacks of :class:`_TreeBuilder`, so no pass ever recurses over a parse
tree. Errors read like GitHub's (``Unexpected symbol: 'x'. Located at position 3 within
expression: ...``) and have GitHub's kinds: ``lexing`` for text that is no token, ``parsing`` for
tokens in a wrong place, unknown names, wrong arity and too deep a tree.

Lark is imported and the parser built on first use, never at import time: this module is
imported inside the Temporal workflow sandbox and must stay cheap and free of I/O there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from ..errors import ExpressionError
from .coercion import WHITESPACE, literal_number, parse_number
from .fastparse import parse as fast_parse
from .functions import FUNCTIONS
from .nodes import (
    MAX_DEPTH,
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

if TYPE_CHECKING:
    from lark import Lark, Token

__all__ = ["MAX_LENGTH", "parse", "parse_with_lark"]

MAX_LENGTH = 21000  # GitHub's ExpressionConstants.MaxLength, in characters

_LEGAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# The characters that end a run of text in GitHub's lexer.
_BOUNDARY = frozenset("()[],.!<>=&|" + WHITESPACE)
# Operators are matched longest-first in every parser state, as GitHub's lexer does: otherwise
# a `!=` where an operand belongs would be read as `!` followed by a stray `=`.
_OPERATORS = ("_OR", "_AND", "_EQ", "_NE", "_LT", "_LE", "_GT", "_GE", "_NOT")

# The named values the expression being parsed may use; a context variable because one Lark
# parser (and its tree-building callbacks) is shared by every thread and task.
_ALLOWED: ContextVar[frozenset[str]] = ContextVar("waterflow_expression_contexts")

_parser: Lark | None = None


class _Problem(Exception):
    """A syntax error found inside Lark's callbacks; :func:`parse` adds the expression text."""

    def __init__(self, kind: str, description: str, raw: str, index: int) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.raw = raw
        self.index = index


def parse(expression: str, allowed_contexts: frozenset[str]) -> Node:
    """Parse ``expression`` (no delimiters) into a tree; ``allowed_contexts`` are lower-case.

    The hand-written fast path (:mod:`.fastparse`) builds the tree for the inputs it is sure
    of, Lark everything else, including every error.
    """
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"Exceeded max expression length {MAX_LENGTH}", 0, "limit")
    tree = fast_parse(expression, allowed_contexts)
    if tree is not None:
        return tree
    return parse_with_lark(expression, allowed_contexts)


def parse_with_lark(expression: str, allowed_contexts: frozenset[str]) -> Node:
    """:func:`parse` with Lark only: the reference the fast path is tested against."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"Exceeded max expression length {MAX_LENGTH}", 0, "limit")
    parser = _parser or _build_parser()
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    reset = _ALLOWED.set(allowed_contexts)
    try:
        return cast(Node, parser.parse(expression))
    except _Problem as found:
        problem = found
    except TooDeep:
        raise ExpressionError(f"Exceeded max expression depth {MAX_DEPTH}", 0, "parsing") from None
    except UnexpectedCharacters as exc:
        index = exc.pos_in_stream or 0
        problem = _Problem("lexing", "Unexpected symbol", _bad_run(expression, index), index)
    except UnexpectedToken as exc:
        problem = _misplaced(expression, exc.token)
    finally:
        _ALLOWED.reset(reset)
    raise _error(expression, problem)


def _misplaced(expression: str, token: Token) -> _Problem:
    """The problem with a token the parser did not expect."""
    bad = _bad_token(token)  # a run that is no token at all is a lexing error first
    if bad is not None:
        return bad
    if token.type == "$END":
        # Lark gives the end marker the place of the last token: GitHub names that token.
        start, end = token.start_pos or 0, token.end_pos or 0
        return _Problem("parsing", "Unexpected end of expression", expression[start:end], start)
    return _Problem("parsing", "Unexpected symbol", str(token), token.start_pos or 0)


def _error(expression: str, problem: _Problem) -> ExpressionError:
    position = problem.index + 1
    message = (
        f"{problem.description}: '{problem.raw}'. "
        f"Located at position {position} within expression: {expression}"
    )
    return ExpressionError(message, position, problem.kind)


def _bad_run(text: str, index: int) -> str:
    """The text GitHub names when no token starts at ``index``: up to the next boundary."""
    if text[index] == "'":
        return text[index:]  # a string that is never closed runs to the end
    end = index + 1
    while end < len(text) and text[end] not in _BOUNDARY:
        end += 1
    return text[index:end]


def _build_parser() -> Lark:
    # Two threads may both build the parser on first use; both results are equivalent, so the
    # race is harmless and needs no lock (threading is off limits in the workflow sandbox).
    global _parser
    from importlib import resources

    from lark import Lark

    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    _parser = Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_TokenCheck(),
        transformer=_TreeBuilder(),
        maybe_placeholders=True,
    )
    return _parser


class _TokenCheck:
    """Post-lexer: rejects runs that are no identifier or number; makes every operator lexable.

    (Lark's ``lexer_callbacks`` would do the first job, but are skipped for terminals that also
    match keywords, which NAME does.)
    """

    always_accept = _OPERATORS

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        for token in stream:
            bad = _bad_token(token)
            if bad is not None:
                raise bad
            yield token


def _bad_token(token: Token) -> _Problem | None:
    """A lexing error if ``token`` is a run that is not a legal identifier or number."""
    if token.type == "NAME":
        bad = not _LEGAL_NAME.fullmatch(token)
    elif token.type == "NUMBER":
        number = parse_number(token)
        bad = math.isnan(number)  # the literal NaN is a keyword, so this run is no number
    else:
        return None
    return _Problem("lexing", "Unexpected symbol", str(token), token.start_pos or 0) if bad else None


_KEYWORDS: dict[str, Any] = {
    "TRUE": True,
    "FALSE": False,
    "NULL": None,
    "NAN": float("nan"),
    "INFINITY": float("inf"),
}


def _compare(op: str) -> Callable[[Any, list[Node]], Node]:
    def build(self: Any, children: list[Node]) -> Node:
        return Compare(op, children[0], children[1])

    return build


class _TreeBuilder:
    """Lark callbacks, one per grammar rule, called as each rule is reduced."""

    eq = _compare("==")
    ne = _compare("!=")
    lt = _compare("<")
    le = _compare("<=")
    gt = _compare(">")
    ge = _compare(">=")

    def empty(self, children: list[Any]) -> Node:
        return Literal(None)

    def or_(self, children: list[Node]) -> Node:
        return AnyOf(children[0], children[1])

    def and_(self, children: list[Node]) -> Node:
        return AllOf(children[0], children[1])

    def not_(self, children: list[Node]) -> Node:
        return Not(children[0])

    def literal(self, children: list[Token]) -> Node:
        token = children[0]
        if token.type == "NUMBER":
            return Literal(literal_number(token))
        if token.type == "STRING":
            return Literal(token[1:-1].replace("''", "'"))
        return Literal(_KEYWORDS[token.type])

    def context(self, children: list[Token]) -> Node:
        token = children[0]
        name = token.lower()
        if name not in _ALLOWED.get():
            raise _Problem("parsing", "Unrecognized named-value", str(token), token.start_pos or 0)
        return ContextRef(name, (token.start_pos or 0) + 1)

    def call(self, children: list[Any]) -> Node:
        token: Token = children[0]
        args: tuple[Node, ...] = tuple(children[1] or ())
        name = token.lower()
        where = token.start_pos or 0
        arity = FUNCTIONS.get(name)
        if arity is None:
            raise _Problem("parsing", "Unrecognized function", str(token), where)
        if len(args) < arity[0]:
            raise _Problem("parsing", "Too few parameters supplied", str(token), where)
        if len(args) > arity[1]:
            raise _Problem("parsing", "Too many parameters supplied", str(token), where)
        return FunctionCall(name, args, where + 1)

    def arguments(self, children: list[Node]) -> list[Node]:
        return children

    def member(self, children: list[Any]) -> Node:
        return Index(children[0], Literal(str(children[1])))

    def star(self, children: list[Node]) -> Node:
        return Index(children[0], Wildcard())

    def index(self, children: list[Node]) -> Node:
        return Index(children[0], children[1])
