"""The node registry: node classes by ``(type, major)``, built from the installed plugins.

A registry is immutable. Hot reload builds a new one (:meth:`NodeRegistry.rebuild`, generation
+1) and swaps the reference; whoever still holds the old registry, or a class taken from it,
keeps running the code it started with.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .dsl import WithProblem
from .dsl._messages import listing, quote
from .dsl._messages import name as shown_name
from .dsl.pydantic_errors import closest, describe, did_you_mean
from .errors import ErrorCode, ExpressionError, WaterflowError, format_path
from .expressions import OPEN, has_templates
from .node import Node, node_problems
from .plugins import PluginError, PluginInfo, PluginManager
from .shellsafe import ShellQuotingError, check_shell_template

_USES_RE = re.compile(r"(?P<type>[^@\s]+)(?:@(?P<major>\d+))?")

ErrorPath = tuple[str | int, ...]


class UnknownNodeError(WaterflowError, LookupError):
    """``uses:`` names a node type (or major version) that is not installed."""

    code = ErrorCode.UNKNOWN_NODE


@dataclass(frozen=True)
class NodeEntry:
    """One registered node class and the plugin that provided it."""

    cls: type[Node]
    plugin: PluginInfo


class NodeRegistry:
    """Node classes by type and major version.

    Build it with :meth:`from_plugins`. Duplicate ``(type, major)`` pairs are refused with a
    :class:`~waterflow_core.plugins.PluginError` naming both distributions.
    """

    def __init__(
        self,
        entries: Iterable[NodeEntry],
        *,
        generation: int = 1,
        plugins: PluginManager | None = None,
    ) -> None:
        self.generation = generation
        self._plugins = plugins
        self._by_type: dict[str, dict[int, NodeEntry]] = {}
        conflicted: set[tuple[str, int]] = set()
        for entry in entries:
            problems = node_problems(entry.cls)
            if problems:
                self._reject(f"{entry.plugin}: " + "; ".join(problems))
                continue
            key = (entry.cls.type, entry.cls.major())
            majors = self._by_type.setdefault(key[0], {})
            other = majors.get(key[1])
            if key in conflicted or (other is not None and other.cls is entry.cls):
                continue
            if other is not None:
                # Neither wins: which one a step would get must not depend on load order.
                del majors[key[1]]
                conflicted.add(key)
                self._reject(
                    f"node type {key[0]}@{key[1]} is provided twice: by {other.plugin.distribution} "
                    f"({_qualname(other.cls)}) and by {entry.plugin.distribution} "
                    f"({_qualname(entry.cls)}); uninstall one or exclude it with WATERFLOW_LOAD_PLUGINS"
                )
                continue
            majors[key[1]] = entry
        self._by_type = {t: majors for t, majors in self._by_type.items() if majors}

    def _reject(self, message: str) -> None:
        # Strict managers (the default) raise PluginError; lenient ones (agent, server) record the
        # problem, leave the offending node out and serve the others.
        if self._plugins is None or self._plugins.strict:
            raise PluginError(message)
        self._plugins.fail(message)

    @classmethod
    def from_plugins(cls, plugins: PluginManager | None = None, *, generation: int = 1) -> NodeRegistry:
        """Build a registry from the ``waterflow.nodes`` plugins of ``plugins`` (default: a new manager)."""
        plugins = plugins if plugins is not None else PluginManager()
        entries = [NodeEntry(node, info) for node, info in plugins.nodes()]
        return cls(entries, generation=generation, plugins=plugins)

    def rebuild(self) -> NodeRegistry:
        """A NEW registry (generation + 1) from the environment as installed now; ``self`` is unchanged."""
        plugins = self._plugins.fresh() if self._plugins is not None else PluginManager()
        return type(self).from_plugins(plugins, generation=self.generation + 1)

    # ------------------------------------------------------------------ lookup

    def get(self, uses: str) -> type[Node]:
        """The class for ``uses`` (``type`` = highest installed major, or ``type@major``)."""
        return self.entry(uses).cls

    def entry(self, uses: str) -> NodeEntry:
        """Like :meth:`get`, with the plugin that provided the class."""
        match = _USES_RE.fullmatch(uses.strip())
        if match is None:
            raise UnknownNodeError(f"invalid node reference {uses!r}; expected 'group/name' or 'group/name@major'")
        majors = self._by_type.get(match["type"])
        if not majors:
            raise UnknownNodeError(self._unknown_message(match["type"]))
        if match["major"] is None:
            return majors[max(majors)]
        entry = majors.get(int(match["major"]))
        if entry is None:
            have = ", ".join(f"@{m}" for m in sorted(majors))
            raise UnknownNodeError(
                f"node type {match['type']} has no major version {match['major']} installed (installed: {have})"
            )
        return entry

    def __contains__(self, uses: object) -> bool:
        if not isinstance(uses, str):
            return False
        try:
            self.entry(uses)
        except UnknownNodeError:
            return False
        return True

    def __iter__(self) -> Iterator[type[Node]]:
        for node_type in sorted(self._by_type):
            for major in sorted(self._by_type[node_type]):
                yield self._by_type[node_type][major].cls

    def __len__(self) -> int:
        return sum(len(majors) for majors in self._by_type.values())

    def _unknown_message(self, node_type: str) -> str:
        message = unknown_node_message(node_type, self._by_type, "installed")
        if self._plugins is not None and self._plugins.errors:
            message += "; plugins that failed to load: " + "; ".join(self._plugins.errors)
        return message

    # ------------------------------------------------------------------ publishing and checking

    def catalog(self) -> list[dict[str, Any]]:
        """What ``GET /v1/nodes`` and agent registration publish, one dict per (type, major)."""
        return [
            {
                "type": node.type,
                "version": node.version,
                "description": node.description or (node.__doc__ or "").strip(),
                "inputs_schema": node.Inputs.model_json_schema(by_alias=True),
                "outputs_schema": node.Outputs.model_json_schema(by_alias=True, mode="serialization"),
                "workflow_side": node.workflow_side,
            }
            for node in self
        ]

    def check_with(self, uses: str, with_data: Any) -> list[WithProblem]:
        """Check a step's ``uses`` and ``with:`` statically: one :class:`WithProblem` per problem.

        Strings containing ``$<< >>`` are only known at run time, so they are accepted for any
        field type; literal values, missing required inputs and unknown keys are reported.
        """
        try:
            node = self.get(uses)
        except UnknownNodeError as exc:
            return [WithProblem((), str(exc), on="uses")]
        return (
            literal_problems(node, with_data)
            + shell_problems(node, with_data)
            + check_model(node.Inputs, with_data, node.type)
        )


def unknown_node_message(node_type: str, known: Collection[str], known_as: str = "known") -> str:
    """``unknown node type 'x'``, with the closest known type and a short list of the known ones."""
    match = closest(node_type, known)
    hint = f"did you mean '{match}'? " if match else ""
    return f"unknown node type {quote(node_type)} ({hint}{known_as}: {listing(sorted(known))})"


def literal_problems(node: type[Node], with_data: Any) -> list[WithProblem]:
    """``literal_inputs`` of ``node`` that contain an expression (checked here and on the agent)."""
    if not isinstance(with_data, Mapping):
        return []
    keys = input_keys(node, node.literal_inputs)
    return [
        WithProblem(
            (key,), f"input '{key}' of {node.type} must be literal text: $<< >> expressions are not allowed here"
        )
        for key, value in with_data.items()
        if key in keys and has_templates(value)
    ]


def shell_problems(node: type[Node], with_data: Any) -> list[WithProblem]:
    """``shell_inputs`` of ``node`` with an expression where bash would always read it as code.

    Integer-only places depend on the value and are checked on the agent when the text renders.
    """
    if not isinstance(with_data, Mapping):
        return []
    keys = input_keys(node, node.shell_inputs)
    problems: list[WithProblem] = []
    for key, value in with_data.items():
        if key not in keys or not isinstance(value, str):
            continue
        try:
            check_shell_template(value)
        except ShellQuotingError as exc:
            problems.append(WithProblem((key,), f"input '{key}' of {node.type}: {exc.message}"))
        except ExpressionError:
            pass  # a malformed expression is reported by the workflow's own expression checks
    return problems


def input_keys(node: type[Node], names: Collection[str]) -> frozenset[str]:
    """Field names plus their aliases: the keys a user may write in ``with:``."""
    keys = set(names)
    fields = getattr(node.Inputs, "model_fields", {})
    for name in names:
        info = fields.get(name)
        if info is not None and info.alias:
            keys.add(info.alias)
    return frozenset(keys)


MAX_WITH_PROBLEMS = 20
"""Problems reported per ``with:``; the rest are counted in one last problem, so a hostile
``with:`` of 100 000 keys costs one validation, not 100 000 messages."""


def check_model(model: type[BaseModel], data: Any, node_type: str) -> list[WithProblem]:
    """Validate ``data`` (the ``with:`` of a ``node_type`` step) against ``model``, forgiving
    whatever an expression might still produce; messages name the node type and the input."""
    if _is_dynamic(data):
        return []
    if not isinstance(data, Mapping):
        return [WithProblem((), f"the with: of {node_type} must be a mapping, got {type(data).__name__}", on="key")]
    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        return _Translator(model, data, node_type).problems(exc.errors(include_url=False))
    return []


class _Translator:
    """pydantic errors of one ``with:`` as :class:`WithProblem` items, in the node's terms."""

    def __init__(self, model: type[BaseModel], data: Mapping[str, Any], node_type: str) -> None:
        self.model, self.data, self.node_type = model, data, node_type

    def problems(self, errors: Iterable[ErrorDetails]) -> list[WithProblem]:
        problems: list[WithProblem] = []
        values: dict[ErrorPath, list[str]] = {}  # a union's alternatives arrive as several errors
        skipped = 0
        for error in errors:
            if not self._relevant(error):
                continue
            if len(problems) + len(values) >= MAX_WITH_PROBLEMS:
                skipped += 1
                continue
            kind, loc = error["type"], tuple(error["loc"])
            path = _data_path(self.data, loc, missing=kind == "missing")
            if kind == "extra_forbidden":
                problems.append(WithProblem(path, self._unknown(path), on="key"))
            elif kind == "missing":  # the key is not there: its place is the key of the mapping
                problems.append(WithProblem(path, self._missing(path), on="key"))
            else:
                values.setdefault(path, []).append(describe(error))
        problems += [
            WithProblem(path, self._wrong(path, found), on="value" if path else "key")
            for path, found in values.items()
        ]
        if skipped:
            more = f"{skipped} more problems in this with: are not listed (only the first {MAX_WITH_PROBLEMS} are)"
            problems.append(WithProblem((), more, on="key"))
        return problems

    def _relevant(self, error: ErrorDetails) -> bool:
        # Missing and unknown keys are facts about the literal text, whatever expressions yield.
        if error["type"] in ("missing", "extra_forbidden"):
            return True
        if has_templates(error.get("input")):
            return False
        return bool(error["loc"]) or not has_templates(self.data)  # a model-level rule fed template text

    def _input(self, path: ErrorPath) -> str:
        return f"input '{format_path(path)}' of {self.node_type}"

    def _unknown(self, path: ErrorPath) -> str:
        key, parent = str(path[-1]), path[:-1]
        hint = did_you_mean(key, _keys_at(self.model, parent))
        if not parent:
            return f"{self.node_type} has no input '{shown_name(key)}'{hint}"
        return f"{self._input(parent)} has no key '{shown_name(key)}'{hint}"

    def _missing(self, path: ErrorPath) -> str:
        key, parent = str(path[-1]) if path else "", path[:-1]
        if not parent:
            return f"missing required input '{shown_name(key)}' of {self.node_type}"
        return f"missing required key '{shown_name(key)}' in {self._input(parent)}"

    def _wrong(self, path: ErrorPath, found: list[str]) -> str:
        where = self._input(path) if path else self.node_type
        return f"{where}: {_alternatives(found)}"


def _alternatives(found: list[str]) -> str:
    """The errors of a union's members as one message: ``expected an integer or a list, got 'x'``."""
    unique = list(dict.fromkeys(found))
    if len(unique) > 1:  # YAML cannot write a null, so "or nothing" only adds noise
        unique = [text for text in unique if not text.startswith(_NOTHING)] or unique
    if len(unique) == 1:
        return unique[0]
    heads, tails = zip(*(text.rpartition(", got ")[::2] for text in unique), strict=True)
    if all(head.startswith("expected ") for head in heads) and len(set(tails)) == 1 and tails[0]:
        wanted = [head.removeprefix("expected ") for head in heads]
        return f"expected {', '.join(wanted[:-1])} or {wanted[-1]}, got {tails[0]}"
    return "; ".join(unique)


_NOTHING = "expected nothing"


def _keys_at(model: type[BaseModel], path: ErrorPath) -> list[str]:
    """The keys a user may write in the mapping at ``path`` of ``model``'s data (for hints)."""
    types: list[Any] = [model]
    for part in path:
        found: list[Any] = []
        for tp in _members(types):
            origin, args = get_origin(tp), get_args(tp)
            if isinstance(part, str) and isinstance(tp, type) and issubclass(tp, BaseModel):
                field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
                found += [field.annotation] if field is not None else []
            elif isinstance(part, str) and origin in (dict, Mapping) and len(args) == 2:
                found.append(args[1])
            elif isinstance(part, int) and origin in (list, tuple, set, frozenset, Sequence) and args:
                found.append(args[0])
        types = found
    return sorted(
        {f.alias or n for tp in _members(types) if isinstance(tp, type) and issubclass(tp, BaseModel)
         for n, f in tp.model_fields.items()}
    )


def _members(types: Iterable[Any]) -> Iterator[Any]:
    """``types`` with ``Annotated`` unwrapped and unions (``X | None``) split into their members."""
    for tp in types:
        origin = get_origin(tp)
        if origin is Annotated:
            yield from _members([get_args(tp)[0]])
        elif origin in (Union, UnionType):
            yield from _members(get_args(tp))
        else:
            yield tp


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_dynamic(value: Any) -> bool:
    return isinstance(value, str) and OPEN in value


def _data_path(data: Any, loc: ErrorPath, *, missing: bool) -> ErrorPath:
    """Keep the segments of a pydantic ``loc`` that are keys/indexes of the user's data.

    pydantic inserts union member tags (``'int'``, ``'list[str]'``) into locations; those mean
    nothing in the YAML. For a missing key, the absent last segment is kept: it is the key.
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            path.append(part)
            node = node[part]
        elif missing and i == len(loc) - 1:
            path.append(part)
    return tuple(path)
