"""Layered configuration of Waterflow's processes: defaults < TOML file < environment < flags.

A process kind describes its settings as a pydantic model whose fields are grouped in sections
(nested models). Each field's environment variable is ``WATERFLOW_<SECTION>_<FIELD>`` unless the
field names another with :func:`env` (the names Waterflow used before there was a file), or none
with :func:`env` ``(None)``. :func:`load_config` merges the layers, remembers where each value
came from, and turns every mistake into a :class:`ConfigError` naming the file and key, the
variable or the flag. Secrets (``SecretStr`` fields and free-form option tables) are never shown,
and a file that holds one must not be readable by other users; no file may be writable by them.
See ADR 0035.
"""

from __future__ import annotations

import re
import stat
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, PlainSerializer, SecretStr, ValidationError

__all__ = [
    "DEFAULT",
    "HIDDEN",
    "PUBLIC_TABLE",
    "ByteCount",
    "ConfigError",
    "Loaded",
    "Seconds",
    "Setting",
    "env",
    "load_config",
    "settings_of",
]

M = TypeVar("M", bound=BaseModel)

DEFAULT = "default"
HIDDEN = "<set>"
"""How ``config show`` prints a secret that is set."""
_ENV_KEY = "waterflow_env"
_PUBLIC_KEY = "waterflow_public"


class ConfigError(Exception):
    """A configuration the process cannot start with; one line naming the file and key, variable or flag."""


def env(name: str | None) -> dict[str, Any]:
    """``json_schema_extra`` giving a field its environment variable (``None``: none)."""
    return {_ENV_KEY: name or ""}


PUBLIC_TABLE: dict[str, Any] = {_PUBLIC_KEY: True}
"""``json_schema_extra`` of a mapping that holds no secret (shown, and allowed in a shared file)."""


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        from .dsl.durations import parse_duration  # the DSL package is slow to import

        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m or 12h ({exc})") from None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


_SIZE = re.compile(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _bytes(value: Any) -> Any:
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size like 65536, 512KiB or 1MiB")
        return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A duration in seconds, also written as a DSL duration (``500ms``, ``30s``, ``5m``, ``1h``)."""
ByteCount = Annotated[int, BeforeValidator(_bytes), PlainSerializer(int)]
"""A number of bytes, also written with a binary unit (``64KiB``, ``1MiB``)."""


@dataclass(frozen=True)
class Setting:
    """One field of a configuration model: its key, environment variable and kind."""

    path: tuple[str, ...]
    description: str
    default: Any
    env: str | None
    kind: str
    """``text``, ``list`` (comma-separated in a variable), ``secret``, ``table`` (free-form options, whose
    values may be secrets) or ``map`` (a mapping that holds none)."""
    type_name: str

    @property
    def key(self) -> str:
        """The dotted key (``limits.max_body_bytes``): ``[limits]`` ``max_body_bytes = ...`` in a file."""
        return ".".join(self.path)


def _kind(annotation: Any) -> str:
    args = (annotation, *typing.get_args(annotation))
    if any(arg is SecretStr for arg in args):
        return "secret"
    for arg in args:
        origin = typing.get_origin(arg) or arg
        if origin in (dict, Mapping):
            return "table"
        if origin in (list, tuple):
            return "list"
    return "text"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")


def _section(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def settings_of(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[Setting]:
    """Every setting of ``model``, sections first-level only (``section.field``), in declaration order."""
    found: list[Setting] = []
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        if section is not None:
            found += settings_of(section, (*prefix, name))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        path = (*prefix, name)
        variable = extra.get(_ENV_KEY)
        if variable is None:
            variable = "WATERFLOW_" + "_".join(path).upper()
        kind = "map" if extra.get(_PUBLIC_KEY) else _kind(info.annotation)
        default = info.get_default(call_default_factory=True)
        found.append(
            Setting(
                path=path,
                description=" ".join((info.description or "").split()),
                default=default,
                env=str(variable) or None if kind not in ("table", "map") else None,
                kind=kind,
                type_name=_type_name(info.annotation),
            )
        )
    return found


@dataclass
class Loaded(Generic[M]):
    """A validated configuration and where each of its values came from."""

    config: M
    sources: dict[str, str]
    """Key (or ``table.entry`` of an option table) → ``default``, ``file PATH``, ``env VAR`` or ``flag --x``."""
    file: Path | None = None
    settings: list[Setting] = field(default_factory=list)

    def value(self, setting: Setting) -> Any:
        """The effective value of ``setting``."""
        value: Any = self.config
        for part in setting.path:
            value = getattr(value, part)
        return value

    def where(self, key: str) -> str:
        """Where ``key`` was set, as error messages name it: ``--flag``, ``VAR``, ``FILE: key`` or ``key``."""
        kind, _, place = self.sources.get(key, DEFAULT).partition(" ")
        return f"{place}: {key}" if kind == "file" else place if kind in ("env", "flag") else key

    def rows(self) -> Iterator[tuple[str, Any, str]]:
        """``(key, value as shown, source)`` for every setting; secrets and option values as ``<set>``."""
        for setting in self.settings:
            value = self.value(setting)
            if setting.kind == "table":
                entries = list(_flatten(value))
                if not entries:
                    yield setting.key, {}, self.sources.get(setting.key, DEFAULT)
                for sub, _ in entries:
                    key = f"{setting.key}.{sub}"
                    yield key, HIDDEN, self.sources.get(key, self.sources.get(setting.key, DEFAULT))
                continue
            yield setting.key, _shown(value, setting), self.sources.get(setting.key, DEFAULT)


def _flatten(table: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in (table or {}).items():
        if isinstance(value, Mapping) and value and prefix == "":
            yield from _flatten(value, f"{key}.")
        else:
            yield f"{prefix}{key}", value


def _shown(value: Any, setting: Setting) -> Any:
    if setting.kind == "secret":
        return HIDDEN if value is not None else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, tuple):
        return list(value)
    return value


_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.findall(_PART, dotted))


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a TOML text is (1-based lines): tomllib does not say."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            in_string = (line.count('"""') + line.count("'''")) % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_parts(key.group(1)))
            for end in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:end], number)
        in_string = (line.count('"""') + line.count("'''")) % 2 == 1
    return lines


def _placed(file: Path, lines: Mapping[tuple[str, ...], int], path: Sequence[str]) -> str:
    """``FILE:LINE`` of the key ``path`` (or of the nearest table holding it), else ``FILE``."""
    for end in range(len(path), 0, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return f"{file}:{line}"
    return str(file)


def _read_file(path: Path) -> tuple[dict[str, Any], bool, dict[tuple[str, ...], int]]:
    """The parsed file, whether other users may read it, and where its keys are."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if position:
            message = message[: position.start()].strip()
            raise ConfigError(f"{path}:{position.group(1)}:{position.group(2)}: {message} (TOML)") from None
        raise ConfigError(f"{path}: {message} (TOML)") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):  # whoever may write it configures this process
        raise ConfigError(f"{path}: other users may change the configuration file; restrict it with: chmod go-w {path}")
    return data, bool(mode & (stat.S_IRWXG | stat.S_IRWXO)), _key_lines(text)


def _file_layer(
    path: Path, settings: list[Setting], data: dict[str, Any], shared: bool, lines: Mapping[tuple[str, ...], int]
) -> tuple[dict[tuple[str, ...], Any], list[str]]:
    by_path = {s.path: s for s in settings}
    sections = {s.path[:-1] for s in settings}
    values: dict[tuple[str, ...], Any] = {}
    secrets: list[str] = []

    def walk(table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in table.items():
            here = (*prefix, key)
            setting = by_path.get(here)
            if setting is None and here in sections and isinstance(value, Mapping):
                walk(value, here)
                continue
            if setting is None:
                known = sorted(s.path[-1] for s in settings if s.path[:-1] == prefix)
                known += sorted(
                    {
                        s.path[len(prefix)]
                        for s in settings
                        if len(s.path) > len(prefix) + 1 and s.path[: len(prefix)] == prefix
                    }
                )
                where = f"[{'.'.join(prefix)}]" if prefix else "the top level"
                raise ConfigError(
                    f"{_placed(path, lines, here)}: unknown key {'.'.join(here)!r} "
                    f"(known in {where}: {', '.join(known) or 'none'})"
                )
            if setting.kind in ("secret", "table") and value not in (None, "", {}):
                secrets.append(setting.key)
            values[here] = value

    walk(data, ())
    if secrets and shared:
        raise ConfigError(
            f"{path}: holds {secrets[0]} (which may be a secret) but other users may read the file; "
            f"restrict it with: chmod 600 {path}"
        )
    return values, secrets


def _env_value(setting: Setting, raw: str) -> Any:
    if setting.kind == "list":
        return [item for item in raw.replace(",", " ").split() if item]
    return raw.strip()


def _nest(values: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path, value in values.items():
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return data


def load_config(
    model: type[M],
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, tuple[str, Any]] | None = None,
) -> Loaded[M]:
    """Merge the layers into ``model``.

    ``flags`` maps a key (``api.port``) to the flag that set it and its value; only flags given on
    the command line belong there. Raises :class:`ConfigError`.
    """
    settings = settings_of(model)
    by_key = {s.key: s for s in settings}
    lines: Mapping[tuple[str, ...], int] = {}
    values: dict[tuple[str, ...], Any] = {}
    sources: dict[str, str] = {}
    if file is not None:
        data, shared, lines = _read_file(file)
        from_file, _ = _file_layer(file, settings, data, shared, lines)
        for path, value in from_file.items():
            values[path] = value
            key = ".".join(path)
            sources[key] = f"file {file}"
            if by_key[key].kind in ("table", "map") and isinstance(value, Mapping):
                sources.update({f"{key}.{sub}": f"file {file}" for sub, _ in _flatten(value)})
    for setting in settings:
        raw = (environ or {}).get(setting.env or "", "") if setting.env else ""
        if raw.strip():
            values[setting.path] = _env_value(setting, raw)
            sources[setting.key] = f"env {setting.env}"
    for key, (flag, value) in (flags or {}).items():
        setting = by_key[key]
        if setting.kind in ("table", "map"):  # options given as flags add to (and override) the file's
            merged = dict(values.get(setting.path) or {})
            for name, entry in value.items():
                if isinstance(entry, Mapping):
                    merged[name] = {**dict(merged.get(name) or {}), **entry}
                    for sub in entry:
                        sources[f"{key}.{name}.{sub}"] = f"flag {flag}"
                else:
                    merged[name] = entry
                    sources[f"{key}.{name}"] = f"flag {flag}"
            values[setting.path] = merged
            continue
        values[setting.path] = value
        sources[key] = f"flag {flag}"
    try:
        config = model.model_validate(_nest(values))
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources, lines)) from None
    return Loaded(config, sources, file, settings)


def _explain(exc: ValidationError, sources: Mapping[str, str], lines: Mapping[tuple[str, ...], int]) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        source = next(
            (sources[".".join(loc[:n])] for n in range(len(loc), 0, -1) if ".".join(loc[:n]) in sources), DEFAULT
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        kind, _, where = source.partition(" ")
        if kind == "file":
            problems.append(f"{_placed(Path(where), lines, loc)}: {key}: {message}")
        elif kind in ("env", "flag"):
            problems.append(f"{where}: {message}")
        else:
            problems.append(f"{key}: {message}")
    return "; ".join(problems)
