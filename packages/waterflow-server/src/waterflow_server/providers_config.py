"""Which providers a server uses and with which options: parsed and checked at start-up.

Event handlers (ADR 0031): ``--event-handler NAME`` (repeatable; ``WATERFLOW_EVENT_HANDLERS``,
comma-separated), options as ``--event-option NAME.KEY=VALUE`` or environment variables
``WATERFLOW_EVENT_<NAME>_<KEY>`` (upper case, ``-`` as ``_``; a flag wins over a variable).
Server groups (ADR 0032): ``--server-groups NAME`` (``WATERFLOW_SERVER_GROUPS``), its options as
``--server-groups-option KEY=VALUE``, and ``--inventory FILE`` (``WATERFLOW_INVENTORY``) as the
``inventory`` provider's ``path``.

Options may also come from the configuration file (``[events.options.<name>]``,
``[server_groups.options]``; ADR 0035), which variables and flags override.

Values from flags and variables are text; an option whose type is a mapping or a list (the
webhook's ``headers``) takes JSON there, and a TOML table or array in the file. Every mistake is
a :class:`ProviderConfigError` naming the key, flag or variable it came from; messages never
repeat an option's value (it may be a secret).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from waterflow_core.providers import EventHandler, Provider, ServerGroupProvider

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = [
    "DEFAULT_EVENT_HANDLERS",
    "DEFAULT_SERVER_GROUPS",
    "ProviderChoice",
    "ProviderConfigError",
    "build_event_handler",
    "build_server_groups",
    "event_env_prefixes",
    "event_handler_choices",
    "server_group_choice",
]

DEFAULT_EVENT_HANDLERS = ("log",)
DEFAULT_SERVER_GROUPS = "agents"
EVENT_ENV_PREFIX = "WATERFLOW_EVENT_"
_NOT_OPTIONS = {"WATERFLOW_EVENT_HANDLERS", "WATERFLOW_EVENT_SPOOL"}



class ProviderConfigError(Exception):
    """A provider selection or option the server cannot start with; the message names the setting."""


@dataclass(frozen=True)
class ProviderChoice:
    """One selected provider: its ``name`` and its ``options`` (already validated)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _classes(kind: type[Provider]) -> tuple[dict[str, type[Any]], list[str]]:
    from waterflow_core.plugins import PluginManager

    manager = PluginManager(strict=False)
    return manager.provider_classes(kind), manager.errors


def _unknown(kind: str, name: str, where: str, known: Mapping[str, Any], errors: list[str]) -> ProviderConfigError:
    message = f"{where}: no {kind} named {name!r} (installed: {', '.join(sorted(known)) or 'none'})"
    if errors:
        message += "; plugins that failed to load: " + "; ".join(errors[:3])
    return ProviderConfigError(message)


def _field_for(options: type[BaseModel], key: str) -> str | None:
    """The field an option key (``queue-size``, ``queue_size``) names, or None."""
    wanted = key.replace("_", "-").lower()
    for name, info in options.model_fields.items():
        if wanted in {name.replace("_", "-").lower(), (info.alias or "").lower()}:
            return name
    return None


def _is_structured(options: type[BaseModel], field_name: str) -> bool:
    """Whether the field takes a mapping or a list (given as JSON on the command line)."""
    annotation = options.model_fields[field_name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if candidate in (dict, list) or typing.get_origin(candidate) in (dict, list):
            return True
    return False


def _collect(
    kind: str, cls: type[Provider], given: Sequence[tuple[str, Any, str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(key, value, where)`` triples → field values and, per field, where it was set."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, value, where in given:
        name = _field_for(cls.Options, key)
        if name is None:
            known = ", ".join(sorted((i.alias or n).replace("_", "-") for n, i in cls.Options.model_fields.items()))
            raise ProviderConfigError(f"{where}: {kind} {cls.name!r} has no option {key!r} (options: {known})")
        if _is_structured(cls.Options, name) and isinstance(value, str):
            try:
                values[name] = json.loads(value)
            except ValueError:
                raise ProviderConfigError(f'{where}: option {key!r} takes JSON (e.g. {{"Name": "value"}})') from None
        else:
            values[name] = value
        origins[name] = where
    return values, origins


def _validated(
    kind: str, cls: type[Provider], given: Sequence[tuple[str, Any, str]], hint: Callable[[str], str]
) -> ProviderChoice:
    values, origins = _collect(kind, cls, given)
    try:
        options = cls.Options.model_validate({_alias(cls.Options, k): v for k, v in values.items()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = err["loc"][0] if err["loc"] else ""
            name = _field_for(cls.Options, str(loc)) or str(loc)
            option = (
                (cls.Options.model_fields[name].alias or name).replace("_", "-")
                if name in cls.Options.model_fields
                else str(loc)
            )
            where = origins.get(name) or hint(option)
            message = "is required" if err["type"] == "missing" else str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {kind} {cls.name!r} option {option!r} {message}")
        raise ProviderConfigError("; ".join(problems)) from None
    return ProviderChoice(cls.name, options.model_dump(by_alias=True, mode="python"))


def _alias(options: type[BaseModel], name: str) -> str:
    return options.model_fields[name].alias or name


def _split(arg: str, flag: str) -> tuple[str, str]:
    key, sep, value = arg.partition("=")
    if not sep or not key.strip():
        raise ProviderConfigError(f"{flag} {key[:40]!r}: expected KEY=VALUE")
    return key.strip(), value


def event_env_prefixes(names: Sequence[str]) -> tuple[str, ...]:
    """The environment variable prefixes that hold options of the handlers ``names``."""
    return tuple(f"{EVENT_ENV_PREFIX}{name.upper().replace('-', '_')}_" for name in dict.fromkeys(names))


def event_handler_choices(
    names: Sequence[str],
    option_args: Sequence[str],
    environ: Mapping[str, str],
    file_options: Mapping[str, Mapping[str, Any]] | None = None,
    file_name: str = "",
) -> tuple[ProviderChoice, ...]:
    """The event handlers selected by ``names`` with their options from a file, ``environ`` and flags.

    ``file_options`` (handler → option → value, from ``[events.options.<handler>]`` of the
    configuration file ``file_name``) are overridden by variables, which flags override.
    """
    classes, errors = _classes(EventHandler)
    selected: dict[str, type[EventHandler]] = {}
    for name in names:
        if name not in classes:
            raise _unknown("event handler", name, "--event-handler", classes, errors)
        selected[name] = classes[name]
    given: dict[str, list[tuple[str, Any, str]]] = {name: [] for name in selected}
    for handler, table in (file_options or {}).items():
        where = f"{file_name}: events.options.{handler}"
        if handler not in selected:
            raise ProviderConfigError(f"{where}: event handler {handler!r} is not selected (events.handlers)")
        if not isinstance(table, Mapping):
            raise ProviderConfigError(f"{where}: expected a table of options")
        given[handler] += [(str(key), value, f"{where}.{key}") for key, value in table.items()]
    for var, value in sorted(environ.items()):
        if var in _NOT_OPTIONS:
            continue
        for name, prefix in zip(selected, event_env_prefixes(list(selected)), strict=True):
            if var.startswith(prefix):
                given[name].append((var[len(prefix) :].lower(), value, var))
    for arg in option_args:
        key, value = _split(arg, "--event-option")
        handler, dot, option = key.partition(".")
        where = f"--event-option {key}"
        if not dot or not option:
            raise ProviderConfigError(f"{where}: expected HANDLER.OPTION=VALUE (e.g. webhook.url=https://...)")
        if handler not in selected:
            raise ProviderConfigError(f"{where}: event handler {handler!r} is not selected (--event-handler {handler})")
        given[handler].append((option, value, where))
    choices = []
    for name, cls in selected.items():

        def hint(option: str, name: str = name) -> str:
            env = f"{EVENT_ENV_PREFIX}{name}_{option}".upper().replace("-", "_")
            return f"--event-option {name}.{option}=... or {env}"

        choice = _validated("event handler", cls, given[name], hint)
        _check_builds(cls, choice, f"--event-handler {name}")
        choices.append(choice)
    return tuple(choices)


def server_group_choice(
    name: str | None,
    option_args: Sequence[str],
    inventory: str | None,
    file_options: Mapping[str, Any] | None = None,
    file_name: str = "",
) -> ProviderChoice:
    """The server group provider: ``name`` (default ``agents``, ``inventory`` when a file is given).

    ``file_options`` come from ``[server_groups.options]`` of the configuration file ``file_name``;
    flags override them.
    """
    name = name or ("inventory" if inventory else DEFAULT_SERVER_GROUPS)
    classes, errors = _classes(ServerGroupProvider)
    if name not in classes:
        raise _unknown("server group provider", name, "--server-groups", classes, errors)
    cls = classes[name]
    given: list[tuple[str, Any, str]] = [
        (str(key), value, f"{file_name}: server_groups.options.{key}") for key, value in (file_options or {}).items()
    ]
    given += [
        (*_split(arg, "--server-groups-option"), f"--server-groups-option {arg.partition('=')[0]}")
        for arg in option_args
    ]
    if inventory:
        if _field_for(cls.Options, "path") is None or name != "inventory":
            raise ProviderConfigError(f"--inventory: the {name!r} server group provider reads no inventory file")
        given.append(("path", inventory, "--inventory"))

    def hint(option: str) -> str:
        return f"--server-groups-option {option}=..." + (" (or --inventory FILE)" if name == "inventory" else "")

    choice = _validated("server group provider", cls, given, hint)
    _check_builds(cls, choice, f"--server-groups {name}")
    return choice


def _check_builds(cls: type[Provider], choice: ProviderChoice, where: str) -> None:
    """Build the provider once, so a file it reads (an inventory) is checked before serving."""
    try:
        cls(choice.options)
    except Exception as exc:  # noqa: BLE001 - any construction failure stops the start, with its message
        raise ProviderConfigError(f"{where}: {exc}") from None


def _instantiate(kind: type[Provider], choice: ProviderChoice, **kwargs: Any) -> Any:
    classes, errors = _classes(kind)
    if choice.name not in classes:
        raise _unknown(kind.__name__, choice.name, "provider", classes, errors)
    return classes[choice.name](choice.options, **kwargs)


def build_event_handler(choice: ProviderChoice) -> EventHandler:
    """The event handler ``choice`` selects, built with its options."""
    handler: EventHandler = _instantiate(EventHandler, choice)
    return handler


def build_server_groups(choice: ProviderChoice, client: Client) -> ServerGroupProvider:
    """The server group provider ``choice`` selects, built with its options and the Temporal client."""
    provider: ServerGroupProvider = _instantiate(ServerGroupProvider, choice, client=client)
    return provider
