"""The node interface: what a node author implements.

A node is one kind of step (``uses: exec/shell``). Agents run activity-side nodes; workflow-side
nodes (``flow/*``) run deterministically inside the interpreter workflow.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

#: ``group/name`` (more segments allowed), lower case: what ``uses:`` names.
NODE_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*(?:/[a-z0-9][a-z0-9_.-]*)+")
_VERSION_RE = re.compile(r"(\d+)(?:\.\d+){0,2}(?:[-+.][0-9A-Za-z.+-]*)?")


def _no_heartbeat(*details: Any) -> None:
    """Default heartbeat: nothing to report to outside an agent (unit tests, workflow side)."""


@dataclass(frozen=True)
class StepUser:
    """The account whose rights the processes of a step get (the agent's ``--run-as USER``).

    Processes a node starts through the agent's event loop already run as this user; a node that
    prepares files for such a process (a script, an input file) must make them readable (or
    writable) by ``uid`` / ``gid``, and nothing more.
    """

    name: str
    uid: int
    gid: int
    """Primary group."""
    groups: tuple[int, ...]
    """Every group of the user, the primary one included."""
    home: str


@dataclass
class NodeContext:
    """What a running node may use besides its inputs.

    ``log`` streams to the run's logs; ``heartbeat`` reports liveness to Temporal (the agent
    supplies it and also heartbeats on its own while a node runs; cancellation arrives as
    ``asyncio.CancelledError`` at the node's next ``await``); ``secrets`` holds only the secrets
    this step's expressions referenced, already resolved; ``env`` is the step environment
    (workflow → job → step, rendered) plus the variables that carry expression values for
    ``shell_inputs``; ``workdir`` is the agent's working directory for this step; ``facts`` are
    the agent's host facts; ``step_user`` is who the step's processes run as (``None``: the
    agent's own user).
    """

    log: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("waterflow.node")
    )
    workdir: Path = field(default_factory=Path.cwd)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    agent: str = ""
    step_path: str = ""
    attempt: int = 1
    heartbeat: Callable[..., None] = _no_heartbeat
    step_user: StepUser | None = None

    def __post_init__(self) -> None:
        # A subclass may implement ``heartbeat`` as a method instead of being handed a callable;
        # the dataclass __init__ would shadow that method with the no-op default, so undo it.
        if self.heartbeat is _no_heartbeat and type(self).heartbeat is not _no_heartbeat:
            del self.heartbeat


class Node(ABC):
    """Base class of every node type.

    Subclasses set ``type`` (``group/name``), ``version`` (semver; the major is what
    ``uses: type@major`` selects), nested pydantic ``Inputs`` and ``Outputs`` models, and implement
    :meth:`run`. ``shell_inputs`` names string inputs whose ``$<< >>`` values must reach the node as
    environment variables instead of spliced text (the injection guard of ``exec/*``);
    ``literal_inputs`` names inputs that must not contain ``$<< >>`` at all (e.g. an interpreter
    command line, where an expression value could add arguments).

    Unless ``Inputs`` sets ``model_config["extra"]`` itself, Waterflow makes it forbid unknown
    keys, so a typo in ``with:`` is an error at validate time instead of a silently ignored key.
    """

    type: ClassVar[str]
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = ""
    workflow_side: ClassVar[bool] = False
    shell_inputs: ClassVar[Collection[str]] = frozenset()
    literal_inputs: ClassVar[Collection[str]] = frozenset()

    class Inputs(BaseModel):
        """Inputs of the node (``with:``)."""

        model_config = ConfigDict(extra="forbid")

    class Outputs(BaseModel):
        """Outputs of the node (``steps.<id>.outputs``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.shell_inputs = frozenset(cls.shell_inputs)
        cls.literal_inputs = frozenset(cls.literal_inputs)
        inputs = cls.__dict__.get("Inputs")
        if isinstance(inputs, type) and issubclass(inputs, BaseModel) and "extra" not in inputs.model_config:
            # Replaces the author's nested class: mypy cannot see a class attribute rebound.
            cls.Inputs = _forbid_extra(inputs)  # type: ignore[misc,assignment]

    @abstractmethod
    async def run(self, ctx: NodeContext, inputs: Any) -> BaseModel:
        """Execute the step once (one attempt) and return an ``Outputs`` instance."""

    @classmethod
    def major(cls) -> int:
        """The major version, as selected by ``uses: type@major``."""
        match = _VERSION_RE.fullmatch(cls.version)
        if match is None:
            raise ValueError(f"{cls.__qualname__}.version is not a semantic version: {cls.version!r}")
        return int(match.group(1))


def _forbid_extra(model: type[BaseModel]) -> type[BaseModel]:
    # A subclass rather than a mutation: the author's class stays as written, and instances of the
    # subclass are still instances of the class the author annotated ``run`` with.
    namespace = {
        "model_config": ConfigDict(extra="forbid"),
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
    }
    return type(model.__name__, (model,), namespace)


def node_problems(cls: Any) -> list[str]:
    """What is wrong with ``cls`` as a node class (empty when it is a valid, concrete node)."""
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        return [f"{cls!r} is not a subclass of waterflow_core.Node"]
    problems: list[str] = []
    node_type = getattr(cls, "type", None)
    if not isinstance(node_type, str) or not NODE_TYPE_RE.fullmatch(node_type):
        problems.append(f"{cls.__qualname__}.type must look like 'group/name', got {node_type!r}")
    if not isinstance(cls.version, str) or not _VERSION_RE.fullmatch(cls.version):
        problems.append(f"{cls.__qualname__}.version must be a semantic version, got {cls.version!r}")
    for attr in ("Inputs", "Outputs"):
        model = getattr(cls, attr, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append(f"{cls.__qualname__}.{attr} must be a pydantic BaseModel subclass")
    if getattr(cls, "__abstractmethods__", None):
        problems.append(f"{cls.__qualname__} does not implement {sorted(cls.__abstractmethods__)}")
    return problems
