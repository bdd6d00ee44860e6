"""The node registry: node classes by ``(type, major)``, built from the installed plugins.

A registry is immutable. Hot reload builds a new one (:meth:`NodeRegistry.rebuild`, generation
+1) and swaps the reference; whoever still holds the old registry, or a class taken from it,
keeps running the code it started with.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ErrorCode, WaterflowError
from .expressions import OPEN, has_templates
from .node import Node, node_problems
from .plugins import PluginError, PluginInfo, PluginManager

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
        known = ", ".join(sorted(self._by_type)) or "none"
        message = f"unknown node type {node_type!r} (installed: {known})"
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

    def check_with(self, uses: str, with_data: Any) -> list[tuple[ErrorPath, str]]:
        """Check a step's ``with:`` statically: ``(path inside with, message)`` per problem.

        Strings containing ``$<<`` are only known at run time, so they are accepted for any field
        type; literal values, missing required fields and unknown keys are reported.
        """
        try:
            node = self.get(uses)
        except UnknownNodeError as exc:
            return [((), str(exc))]
        return literal_problems(node, with_data) + check_model(node.Inputs, with_data)


def literal_problems(node: type[Node], with_data: Any) -> list[tuple[ErrorPath, str]]:
    """``literal_inputs`` of ``node`` that contain an expression (checked here and on the agent)."""
    if not isinstance(with_data, Mapping):
        return []
    keys = input_keys(node, node.literal_inputs)
    return [
        ((key,), f"'{key}' must be literal text: $<< >> expressions are not allowed here")
        for key, value in with_data.items()
        if key in keys and has_templates(value)
    ]


def input_keys(node: type[Node], names: Collection[str]) -> frozenset[str]:
    """Field names plus their aliases: the keys a user may write in ``with:``."""
    keys = set(names)
    fields = getattr(node.Inputs, "model_fields", {})
    for name in names:
        info = fields.get(name)
        if info is not None and info.alias:
            keys.add(info.alias)
    return frozenset(keys)


def check_model(model: type[BaseModel], data: Any) -> list[tuple[ErrorPath, str]]:
    """Validate ``data`` against ``model``, forgiving whatever an expression might still produce."""
    if _is_dynamic(data):
        return []
    if not isinstance(data, Mapping):
        return [((), f"must be a mapping, got {type(data).__name__}")]
    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        dynamic_anywhere = has_templates(data)
        problems: list[tuple[ErrorPath, str]] = []
        for error in exc.errors(include_url=False):
            kind, loc = error["type"], tuple(error["loc"])
            # Missing and unknown keys are facts about the literal text, whatever expressions yield.
            if kind not in ("missing", "extra_forbidden"):
                if has_templates(error.get("input")):
                    continue
                if not loc and dynamic_anywhere:  # a model-level rule fed template text
                    continue
            problems.append((_data_path(data, loc, missing=kind == "missing"), error["msg"]))
        return problems
    return []


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
