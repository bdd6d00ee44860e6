"""Syntax tree -> nested Python closures, plus what static checks need to know about a text.

Compiling once and calling closures afterwards keeps a typical condition in the low
microseconds: there is no tree walk and no dispatch on node types at evaluation time, a chain
such as ``steps.build.outputs.result`` is one closure with its keys folded in advance, and a
comparison with a string literal has the literal's case-folded form ready.

The closures are built on the first evaluation, not by :func:`compile_expression`: validation
compiles every expression of a workflow for its errors and static facts and never evaluates
them, and building closures would be half its cost.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any

from .access import MISSING, Key, index, scan, select, star
from .coercion import (
    FilteredArray,
    equal,
    fold,
    greater,
    greater_or_equal,
    integer_index,
    less,
    less_or_equal,
    to_string,
    truthy,
)
from .functions import STATUS_FUNCTIONS, build_call
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
    Wildcard,
)
from .parser import parse
from .state import EvalState

__all__ = [
    "KNOWN_CONTEXTS",
    "Call",
    "CompiledExpression",
    "Reference",
    "compile_expression",
    "evaluate",
]

Fn = Callable[[EvalState], Any]

KNOWN_CONTEXTS = frozenset(
    {
        "inputs",
        "vars",
        "env",
        "secrets",
        "steps",
        "needs",
        "matrix",
        "server",
        "loop",
        "workflow",
        "job",
        "strategy",
    }
)
"""The named values an expression may use unless the caller says otherwise."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One use of a context: ``steps['build'].outputs.x`` is ``("steps", ("build", "outputs", "x"))``.

    ``context`` is lower-cased; ``path`` holds the property names (as written) and integer indexes
    that follow it literally, up to the first computed index or ``*``; ``position`` is 1-based.
    """

    context: str
    path: tuple[str | int, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    """One function call: lower-cased ``name``, number of arguments, 1-based ``position``."""

    name: str
    arity: int
    position: int


class CompiledExpression:
    """A parsed and checked expression; immutable, shareable across threads and runs.

    Its closures are built on the first evaluation. Two threads evaluating it for the first time
    at once may both build them: the results are equivalent and either one is kept, so the race
    is harmless and needs no lock (threading is off limits in the workflow sandbox).
    """

    __slots__ = ("_fn", "_tree", "calls", "references", "source", "uses_status_function")

    def __init__(
        self, source: str, tree: Node, references: tuple[Reference, ...], calls: tuple[Call, ...]
    ) -> None:
        self.source = source
        self.references = references
        self.calls = calls
        self.uses_status_function = any(call.name in STATUS_FUNCTIONS for call in calls)
        """True if it calls success(), failure(), always() or cancelled(); GitHub reads an
        ``if`` without one as ``success() && (...)``."""
        self._tree = tree
        self._fn: Fn | None = None

    def evaluate(self, contexts: Mapping[str, Any], *, status: str = "success") -> Any:
        """The value of the expression over ``contexts``; ``status`` drives the status functions.

        Raises :class:`~waterflow_core.errors.ExpressionError` (kind ``evaluation`` or ``limit``)
        and ``ValueError`` for a ``status`` other than success, failure or cancelled.
        """
        return self.run(EvalState(contexts, status))

    def run(self, state: EvalState) -> Any:
        """Evaluate within an evaluation already under way (the expressions of one template share
        one state, and so one memory budget); :meth:`evaluate` is the public entry point."""
        fn = self._fn
        if fn is None:
            fn = self._fn = _compile(self._tree)
        value = fn(state)
        return list(value) if type(value) is FilteredArray else value

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


def compile_expression(
    expression: str, *, allowed_contexts: Collection[str] | None = None
) -> CompiledExpression:
    """Parse and compile ``expression`` (the text between ``$<<`` and ``>>``).

    ``allowed_contexts`` defaults to :data:`KNOWN_CONTEXTS`; any other name is an
    ``Unrecognized named-value`` error, as are unknown functions and wrong argument counts.
    Results are cached by text. Raises :class:`~waterflow_core.errors.ExpressionError` of kind
    ``lexing``, ``parsing`` or ``limit``.
    """
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, not {type(expression).__name__}")
    if allowed_contexts is None:
        allowed = KNOWN_CONTEXTS
    else:
        allowed = frozenset(name.lower() for name in allowed_contexts)
    return _compile_text(expression, allowed)


def evaluate(expression: str, contexts: Mapping[str, Any], *, status: str = "success") -> Any:
    """Compile (cached) and evaluate ``expression`` over ``contexts``.

    The expression may use :data:`KNOWN_CONTEXTS` and any other name present in ``contexts``.
    """
    allowed = KNOWN_CONTEXTS.union(name.lower() for name in contexts if isinstance(name, str))
    return _compile_text(expression, allowed).evaluate(contexts, status=status)


# Bounds what a hostile submitter can pin in memory (~1 KiB texts × entries); real
# expressions and templates are far shorter, longer ones are simply compiled each time.
MAX_CACHED_TEXT = 1024
"""Expressions and templates up to this many characters are cached (by text and allowed
contexts, 4096 of each); longer ones are compiled on every call. A workflow's expressions are
short; caching texts up to the 1 MiB document cap could keep gigabytes alive per process."""


def _compile_text(expression: str, allowed: frozenset[str]) -> CompiledExpression:
    """Compile ``expression``; from the cache when it is at most :data:`MAX_CACHED_TEXT` long."""
    if len(expression) <= MAX_CACHED_TEXT:
        return _compile_cached(expression, allowed)
    return _compile_uncached(expression, allowed)


def _compile_uncached(expression: str, allowed: frozenset[str]) -> CompiledExpression:
    tree = parse(expression, allowed)
    references: list[Reference] = []
    calls: list[Call] = []
    _collect(tree, references, calls)
    references.sort(key=_BY_POSITION)
    calls.sort(key=_BY_POSITION)
    return CompiledExpression(expression, tree, tuple(references), tuple(calls))


_compile_cached = lru_cache(maxsize=4096)(_compile_uncached)


_BY_POSITION = attrgetter("position")


# --- static facts -----------------------------------------------------------------------------


def _collect(node: Node, references: list[Reference], calls: list[Call]) -> None:
    # Tests on the exact class (the node classes are final): cheaper than isinstance chains.
    if type(node) is Index:
        keys: list[Node] = []
        base: Node = node
        while type(base) is Index:
            keys.append(base.key)
            base = base.base
        keys.reverse()
        if type(base) is ContextRef:
            path: list[str | int] = []
            for key in keys:
                element = _path_element(key)
                if element is None:
                    break
                path.append(element)
            references.append(Reference(base.name, tuple(path), base.position))
        else:
            _collect(base, references, calls)
        for key in keys:
            if type(key) is not Literal and type(key) is not Wildcard:
                _collect(key, references, calls)
    elif type(node) is ContextRef:
        references.append(Reference(node.name, (), node.position))
    elif type(node) is FunctionCall:
        calls.append(Call(node.name, len(node.args), node.position))
        for arg in node.args:
            _collect(arg, references, calls)
    elif type(node) is Not:
        _collect(node.operand, references, calls)
    elif type(node) is Compare:
        _collect(node.left, references, calls)
        _collect(node.right, references, calls)
    elif type(node) is AllOf or type(node) is AnyOf:
        for operand in node.operands:
            _collect(operand, references, calls)


def _path_element(key: Node) -> str | int | None:
    """A literal key as a path element; None for ``*``, computed keys and odd literals."""
    if isinstance(key, Literal):
        value = key.value
        if type(value) is str:
            return value
        if type(value) is int and value >= 0:
            return value
    return None


# --- closures ---------------------------------------------------------------------------------


def _compile(node: Node) -> Fn:
    compiler = _COMPILERS[type(node)]
    return compiler(node)


def _compile_literal(node: Literal) -> Fn:
    value = node.value

    def literal(state: EvalState) -> Any:
        return value

    return literal


def _literal_key(key: Literal) -> Key:
    value = key.value
    if type(value) is str and value[:1] in _NAME_START:
        # A property name (`a.b`) selects no array position: such text reads as no number, or
        # as Infinity/NaN, which select none either. This skips parse_number for the usual key.
        return value, fold(value), None
    text = to_string(value)
    return text, fold(text), integer_index(value)


_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def _compile_context(node: ContextRef) -> Fn:
    return _chain(node, ())


def _chain(root: ContextRef, keys: tuple[Key, ...]) -> Fn:
    """``context.a.b['c'][0]`` as one closure: the common shape of a reference."""
    name, folded_name, position = root.name, fold(root.name), root.position

    def chain(state: EvalState) -> Any:
        contexts = state.contexts
        value = contexts.get(name, MISSING)
        if value is MISSING:
            value = scan(contexts, folded_name)
            if value is MISSING:
                value = None
        for key in keys:
            if type(value) is dict:
                found = value.get(key[0], MISSING)
                if found is MISSING:
                    found = scan(value, key[1])  # type: ignore[arg-type]
                value = None if found is MISSING else found
            else:
                value = select(state, value, key, position)
        return value

    return chain


def _compile_index(node: Index) -> Fn:
    # Literal keys down to a context reference make one chain closure.
    keys: list[Key] = []
    base: Node = node
    while isinstance(base, Index) and isinstance(base.key, Literal):
        keys.append(_literal_key(base.key))
        base = base.base
    if isinstance(base, ContextRef):
        return _chain(base, tuple(reversed(keys)))

    base_fn = _compile(node.base)
    key = node.key
    position = _position(node)
    if isinstance(key, Wildcard):

        def star_(state: EvalState) -> Any:
            return star(state, base_fn(state), position)

        return star_
    if isinstance(key, Literal):
        literal_key = _literal_key(key)

        def member(state: EvalState) -> Any:
            return select(state, base_fn(state), literal_key, position)

        return member
    key_fn = _compile(key)

    def index_(state: EvalState) -> Any:
        return index(state, base_fn(state), key_fn(state), position)

    return index_


def _position(node: Node) -> int:
    """Where a node's value comes from, for error messages: its leftmost name or call."""
    while isinstance(node, Index):
        node = node.base
    if isinstance(node, ContextRef | FunctionCall):
        return node.position
    return 0


def _compile_not(node: Not) -> Fn:
    operand = _compile(node.operand)

    def not_(state: EvalState) -> bool:
        return not truthy(operand(state))

    return not_


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": equal,
    "<": less,
    "<=": less_or_equal,
    ">": greater,
    ">=": greater_or_equal,
}


def _compile_compare(node: Compare) -> Fn:
    left, right = node.left, node.right
    if node.op in ("==", "!=") and isinstance(left, Literal) and type(left.value) is str:
        left, right = right, left  # equality is symmetric; put the literal on the right
    if node.op in ("==", "!=") and isinstance(right, Literal) and type(right.value) is str:
        test = _equals_text(_compile(left), right.value)
    else:
        compare = _COMPARISONS["==" if node.op == "!=" else node.op]
        left_fn, right_fn = _compile(left), _compile(right)

        def test(state: EvalState) -> bool:
            return compare(left_fn(state), right_fn(state))

    if node.op != "!=":
        return test

    def not_equal(state: EvalState) -> bool:
        return not test(state)

    return not_equal


def _equals_text(value_fn: Fn, text: str) -> Fn:
    """``value == 'text'``, the most common condition, with the literal folded once."""
    folded, length = fold(text), len(text)

    def equals_text(state: EvalState) -> bool:
        value = value_fn(state)
        if type(value) is str:
            return value == text or (len(value) == length and fold(value) == folded)
        return equal(value, text)

    return equals_text


def _compile_all_of(node: AllOf) -> Fn:
    operands = tuple(_compile(operand) for operand in node.operands)

    def all_of(state: EvalState) -> Any:
        value = None
        for operand in operands:
            value = operand(state)
            if value is not True and not truthy(value):
                return value
        return value

    return all_of


def _compile_any_of(node: AnyOf) -> Fn:
    operands = tuple(_compile(operand) for operand in node.operands)

    def any_of(state: EvalState) -> Any:
        value = None
        for operand in operands:
            value = operand(state)
            if value is True or truthy(value):
                return value
        return value

    return any_of


def _compile_call(node: FunctionCall) -> Fn:
    args = tuple(_compile(arg) for arg in node.args)
    return build_call(node.name, args, node.args, node.position)


_COMPILERS: dict[type[Node], Callable[[Any], Fn]] = {
    Literal: _compile_literal,
    ContextRef: _compile_context,
    Index: _compile_index,
    Not: _compile_not,
    Compare: _compile_compare,
    AllOf: _compile_all_of,
    AnyOf: _compile_any_of,
    FunctionCall: _compile_call,
}
