"""Reading into data: context lookup, ``a.b`` / ``a[b]`` and the ``*`` filter, as GitHub does it.

Property names are case-insensitive. An exact-case key is tried first (one dict lookup, the
common case); only a miss scans the keys. Indexing anything that has no such member gives null,
never an error. Indexing a :class:`FilteredArray` indexes each of its elements and keeps the hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .coercion import STRING, FilteredArray, fold, integer_index, is_array, kind_of, to_string
from .state import EvalState

__all__ = ["MISSING", "Key", "index", "lookup", "scan", "select", "star"]

MISSING = object()

Key = tuple[str | None, str | None, int | None]
"""An index as GitHub uses it: as text (None unless a primitive), case-folded, as an array position."""


def scan(mapping: Mapping[Any, Any], folded: str) -> Any:
    """The value under the key that equals ``folded`` ignoring case, or :data:`MISSING`."""
    for key, value in mapping.items():
        name = key if type(key) is str else to_string(key)
        if len(name) == len(folded) and fold(name) == folded:
            return value
    return MISSING


def lookup(mapping: Mapping[Any, Any], text: str, folded: str) -> Any:
    """``mapping[text]`` ignoring case, or :data:`MISSING`."""
    found = mapping.get(text, MISSING)
    return found if found is not MISSING else scan(mapping, folded)


def select(state: EvalState, value: Any, key: Key, position: int) -> Any:
    """``value[key]``: objects are indexed by the key's text, arrays by its position."""
    cls = type(value)
    if cls is FilteredArray:
        return _select_each(state, value, key, position)
    text, folded, integer = key
    if cls is dict or (cls is not list and cls is not tuple and isinstance(value, Mapping)):
        if text is None:
            return None
        found = lookup(value, text, folded)  # type: ignore[arg-type]
        return None if found is MISSING else found
    if is_array(value):
        return value[integer] if integer is not None and integer < len(value) else None
    return None


def index(state: EvalState, value: Any, key: Any, position: int) -> Any:
    """``value[key]`` for a key computed at run time."""
    if not (isinstance(value, Mapping) or is_array(value)):
        return None
    text = to_string(key) if kind_of(key) <= STRING else None
    folded = None if text is None else fold(text)
    return select(state, value, (text, folded, integer_index(key)), position)


def _select_each(state: EvalState, items: FilteredArray, key: Key, position: int) -> FilteredArray:
    text, folded, integer = key
    state.charge_array(position, "a `*` filter")
    result = FilteredArray()
    for item in items:
        if isinstance(item, Mapping):
            if text is not None:
                found = lookup(item, text, folded)  # type: ignore[arg-type]
                if found is not MISSING:  # a member that is present but null is kept
                    result.append(found)
        elif is_array(item) and integer is not None and integer < len(item):
            result.append(item[integer])
    state.charge_items(len(result), position, "a `*` filter")
    return result


def star(state: EvalState, value: Any, position: int) -> FilteredArray:
    """``value.*``: the values of an object, the items of an array, one level of a filtered array."""
    state.charge_array(position, "a `*` filter")
    if type(value) is FilteredArray:
        result = FilteredArray()
        for item in value:
            if isinstance(item, Mapping):
                children: Any = item.values()
            elif is_array(item):
                children = item
            else:
                continue
            # Charged before copying: shared or cyclic data must not multiply unchecked.
            state.charge_items(len(children), position, "a `*` filter")
            result.extend(children)
        return result
    if isinstance(value, Mapping):
        state.charge_items(len(value), position, "a `*` filter")
        return FilteredArray(value.values())
    if is_array(value):
        state.charge_items(len(value), position, "a `*` filter")
        return FilteredArray(value)
    return FilteredArray()
