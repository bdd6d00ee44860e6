"""Rendering a step's ``with:`` and ``env:`` on the agent.

The interpreter ships these as the user's templates (see :mod:`waterflow_core.steptask`); they
are rendered here, after secrets are resolved, so secret values never enter workflow history.
Inputs the node declares as ``shell_inputs`` are rendered with
:func:`waterflow_core.shellsafe.render_for_shell`: expression values reach the command as
environment variables, never as spliced text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from waterflow_core.errors import ExpressionError, format_path
from waterflow_core.expressions import OPEN, Template, map_templates, parse_template, walk_templates
from waterflow_core.node import Node
from waterflow_core.registry import input_keys, literal_problems
from waterflow_core.shellsafe import DEFAULT_PREFIX, render_for_shell, to_shell_string

Path = tuple[str | int, ...]


class RenderError(Exception):
    """A template of the step could not be parsed or evaluated; ``path`` says which one."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{format_path(path)}: {message}")


@dataclass
class RenderedStep:
    """The step's inputs and environment, ready for the node."""

    inputs: dict[str, Any]
    env: dict[str, str]
    shell_env: dict[str, str] = field(default_factory=dict)
    """Variables carrying the values of expressions in ``shell_inputs``."""


class StepTemplates:
    """The ``with:`` and ``env:`` templates of one step."""

    def __init__(self, with_: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self._with = dict(with_)
        self._env = dict(env)

    def secret_names(self) -> list[str]:
        """The secrets the templates read (``secrets.NAME`` / ``secrets['NAME']``), in order.

        A secret addressed through a computed key (``secrets[inputs.which]``) cannot be known
        before evaluation and is not resolved: it evaluates to null, as an unknown secret does.
        """
        names: dict[str, None] = {}
        for path, text in chain(walk_templates(self._with, ("with",)), walk_templates(self._env, ("env",))):
            for _, compiled in self._template(path, text).expressions:
                for ref in compiled.references:
                    if ref.context.lower() == "secrets" and ref.path and isinstance(ref.path[0], str):
                        names[ref.path[0]] = None
        return list(names)

    def render(self, node: type[Node], contexts: dict[str, Any], *, status: str = "success") -> RenderedStep:
        """Render ``env`` first (so ``with`` sees it in the ``env`` context), then ``with``."""
        env = {
            key: self._render_env(("env", key), value, contexts, status)
            for key, value in self._env.items()
        }
        contexts = {**contexts, "env": {**(contexts.get("env") or {}), **env}}
        for (key,), message in literal_problems(node, self._with):
            raise RenderError(("with", key), message)
        shell_keys = _shell_keys(node)
        inputs: dict[str, Any] = {}
        shell_env: dict[str, str] = {}
        for key, value in self._with.items():
            path: Path = ("with", key)
            if key in shell_keys and isinstance(value, str) and OPEN in value:
                # The first shell input keeps the documented WATERFLOW_EXPR_<n> names; any
                # further one gets its own prefix so two inputs never share a variable.
                prefix = DEFAULT_PREFIX if not shell_env else f"{DEFAULT_PREFIX}{len(shell_env)}_"
                try:
                    inputs[key], variables = render_for_shell(value, contexts, status=status, prefix=prefix)
                except ExpressionError as err:
                    raise RenderError(path, err.message) from err
                shell_env.update(variables)
            else:
                inputs[key] = self._render_value(path, value, contexts, status)
        return RenderedStep(inputs=inputs, env=env, shell_env=shell_env)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _template(path: Path, text: str) -> Template:
        # parse_template caches by text: the same step template parses once per agent.
        try:
            return parse_template(text)
        except ExpressionError as err:
            raise RenderError(path, err.message) from err

    def _render_value(self, path: Path, value: Any, contexts: dict[str, Any], status: str) -> Any:
        def render_one(where: Path, text: str) -> Any:
            try:
                return self._template(where, text).render(contexts, status=status)
            except ExpressionError as err:
                raise RenderError(where, err.message) from err

        return map_templates(value, render_one, path)

    def _render_env(self, path: Path, value: Any, contexts: dict[str, Any], status: str) -> str:
        rendered = self._render_value(path, value, contexts, status)
        return rendered if isinstance(rendered, str) else to_shell_string(rendered)


def _shell_keys(node: type[Node]) -> frozenset[str]:
    """``shell_inputs`` as the keys a user may write in ``with:`` (field names and aliases)."""
    return input_keys(node, frozenset(node.shell_inputs))
