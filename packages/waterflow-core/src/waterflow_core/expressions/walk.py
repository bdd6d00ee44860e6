"""Finding and rendering the ``$<< >>`` templates inside JSON-shaped data.

A step's ``with:``, an ``env:`` map, a matrix: values nest mappings and lists around strings, and
any string may be a template. These two functions are the one walk over such values, so every
place that checks, renders or inspects templates agrees on what counts as one (a string holding
``$<<``) and on the path that names it (keys and list indexes from the value's root, the form
``format_path`` and the YAML positions take).

>>> list(walk_templates({"a": ["x", "$<< inputs.v >>"], "b": "plain"}, ("with",)))
[(('with', 'a', 1), '$<< inputs.v >>')]
>>> map_templates({"a": ["x", "$<< 1 >>"]}, lambda path, text: path)
{'a': ['x', ('a', 1)]}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .template import OPEN

__all__ = ["JsonPath", "has_templates", "map_templates", "walk_templates"]

JsonPath = tuple[str | int, ...]
"""Keys and list indexes from a value's root down to one element."""

_SEQUENCES = (list, tuple)  # a tuple of types: ``list | tuple`` would build a union per test


def walk_templates(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, str]]:
    """``(path, text)`` for each string inside ``value`` that holds ``$<<``, in document order.

    Dicts are walked by key, lists and tuples by index; anything else is a leaf (the data is
    JSON-shaped: it comes from YAML, pydantic models or Temporal payloads). ``path`` is prefixed
    to every path yielded. The text is not parsed: a yielded string may still be an invalid
    template. Iterative, so nesting depth is no limit.
    """
    # Children are pushed last first, so the first is walked first. The load-time checks call
    # this for every with: and env: of a workflow, most of them absent: reversing in place and
    # plain type tests keep it as fast as the walker it replaced.
    stack: list[tuple[JsonPath, Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            if OPEN in node:
                yield where, node
        elif isinstance(node, dict):
            stack.extend([((*where, key), node[key]) for key in reversed(node)])
        elif isinstance(node, _SEQUENCES):
            stack.extend([((*where, index), node[index]) for index in range(len(node) - 1, -1, -1)])


def has_templates(value: Any) -> bool:
    """Whether any string inside ``value`` holds ``$<<`` (see :func:`walk_templates`)."""
    return next(walk_templates(value), None) is not None


def map_templates(value: Any, render: Callable[[JsonPath, str], Any], path: JsonPath = ()) -> Any:
    """A copy of ``value`` with each string holding ``$<<`` replaced by ``render(path, text)``.

    Containers (as in :func:`walk_templates`) are rebuilt, dicts as ``dict``, lists as ``list``,
    tuples as ``tuple``, even when nothing inside them changes: the result never shares a
    container with ``value``.
    Other values, and strings without ``$<<``, are kept as they are. ``render`` is called in
    document order; whatever it raises propagates, so it can report the failing ``path``.
    """
    if isinstance(value, str):
        return render(path, value) if OPEN in value else value
    if isinstance(value, dict):
        return {key: map_templates(child, render, (*path, key)) for key, child in value.items()}
    if isinstance(value, _SEQUENCES):
        items = [map_templates(child, render, (*path, index)) for index, child in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    return value
