"""The layered configuration loader and the JSON log format (ADR 0035)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from waterflow_core.config import PUBLIC_TABLE, ByteCount, ConfigError, Seconds, env, load_config, settings_of
from waterflow_core.logformat import JsonFormatter

pytestmark = pytest.mark.unit


class _Net(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(default=80, ge=1)
    hosts: list[str] = Field(default_factory=list, json_schema_extra=env("LEGACY_HOSTS"))
    password: SecretStr | None = None
    timeout: Seconds = 30.0
    body: ByteCount = 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    net: _Net = Field(default_factory=_Net)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict, json_schema_extra=PUBLIC_TABLE)


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_variables_derive_from_keys_unless_named() -> None:
    names = {s.key: (s.env, s.kind) for s in settings_of(_Model)}
    assert names["net.port"] == ("WATERFLOW_NET_PORT", "text")
    assert names["net.hosts"] == ("LEGACY_HOSTS", "list")
    assert names["net.password"] == ("WATERFLOW_NET_PASSWORD", "secret")
    assert names["options"] == (None, "table")
    assert names["labels"] == (None, "map")


def test_flags_beat_variables_beat_the_file_beat_defaults(tmp_path: Path) -> None:
    path = _file(tmp_path, '[net]\nport = 1\nhosts = ["a"]\ntimeout = "2m"\nbody = "4KiB"\n')
    loaded = load_config(
        _Model,
        file=path,
        environ={"WATERFLOW_NET_PORT": "2", "LEGACY_HOSTS": "b, c d", "WATERFLOW_NET_TIMEOUT": ""},
        flags={"net.port": ("--port", 3)},
    )
    net = loaded.config.net
    assert (net.port, net.hosts, net.timeout, net.body) == (3, ["b", "c", "d"], 120.0, 4096)
    assert loaded.sources["net.port"] == "flag --port"
    assert loaded.sources["net.hosts"] == "env LEGACY_HOSTS"
    assert loaded.sources["net.timeout"] == f"file {path}"  # an empty variable is unset
    assert "net.password" not in loaded.sources
    rows = {key: (value, source) for key, value, source in loaded.rows()}
    assert rows["net.password"] == (None, "default")


def test_option_tables_merge_file_and_flags_and_are_never_shown(tmp_path: Path) -> None:
    path = _file(tmp_path, '[options.hook]\nurl = "https://x"\nsecret = "s3cret"\n[labels]\nrack = "r1"\n')
    loaded = load_config(
        _Model,
        file=path,
        flags={"options": ("--option", {"hook": {"url": "https://y"}}), "labels": ("--label", {"zone": "z"})},
    )
    assert loaded.config.options == {"hook": {"url": "https://y", "secret": "s3cret"}}
    assert loaded.config.labels == {"rack": "r1", "zone": "z"}
    rows = {key: (value, source) for key, value, source in loaded.rows()}
    assert rows["options.hook.url"] == ("<set>", "flag --option")
    assert rows["options.hook.secret"] == ("<set>", f"file {path}")
    assert rows["labels"] == ({"rack": "r1", "zone": "z"}, f"file {path}")
    assert "s3cret" not in repr(list(loaded.rows()))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize("text", ['[net]\npassword = "pw"\n', '[options.hook]\nsecret = "pw"\n'])
def test_a_secret_needs_a_private_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"other users may read the file; restrict it with: chmod 600") as err:
        load_config(_Model, file=_file(tmp_path, text, 0o640))
    assert "pw" not in str(err.value)
    load_config(_Model, file=_file(tmp_path, text, 0o600))
    load_config(_Model, file=_file(tmp_path, '[labels]\nrack = "r1"\n', 0o644))  # no secret: shared is fine


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        (
            "[net]\nprot = 1\n",
            {},
            "{file}:2: unknown key 'net.prot' (known in [net]: body, hosts, password, port, timeout)",
        ),
        ("[nett]\nport = 1\n", {}, "{file}:1: unknown key 'nett' (known in the top level: labels, options, net)"),
        ("[net]\nport = 0\n", {}, "{file}:2: net.port: Input should be greater than or equal to 1"),
        ("", {"WATERFLOW_NET_BODY": "1 MB"}, "WATERFLOW_NET_BODY: '1 MB' is not a size like 65536, 512KiB or 1MiB"),
        ('[net]\nport = "x"\n[net]\n', {}, "{file}:3:5: Cannot declare ('net',) twice (TOML)"),
    ],
)
def test_mistakes_name_the_place(tmp_path: Path, text: str, environ: dict[str, str], message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(_Model, file=path, environ=environ)
    assert str(err.value) == message.format(file=path)


def test_a_flag_mistake_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--port: Input should be greater than or equal to 1$"):
        load_config(_Model, flags={"net.port": ("--port", 0)})


def test_json_log_records_are_one_object_per_line() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("waterflow.x", logging.WARNING, __file__, 1, "step %s\nfailed", ("a",), None)
    record.run_id = "r-1"
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "waterflow.x"
    assert entry["message"] == "step a\nfailed" and entry["run_id"] == "r-1"
    assert entry["ts"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(formatter.format(record))["exc"]
    record.exc_text = "ValueError: ***"  # as the agent's masking leaves a step's record
    assert json.loads(formatter.format(record))["exc"] == "ValueError: ***"


def test_a_value_error_names_the_line_of_its_key(tmp_path: Path) -> None:
    text = '[options.hook]\nnote = """\nport = 1\n"""\n\n[net]\n"timeout" = "5s"\n  port   =   0  # no\n'
    with pytest.raises(ConfigError) as err:
        load_config(_Model, file=_file(tmp_path, text))
    assert str(err.value).startswith(f"{tmp_path / 'c.toml'}:8: net.port: ")
    with pytest.raises(ConfigError) as err:
        load_config(_Model, file=_file(tmp_path, "# dotted\nnet.hosts = [1]\n"))
    assert str(err.value).startswith(f"{tmp_path / 'c.toml'}:2: net.hosts.0: Input should be a valid string")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_file_others_may_change_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, "[net]\nport = 8\n", mode)
    with pytest.raises(
        ConfigError, match=r"other users may change the configuration file; restrict it with: chmod go-w"
    ):
        load_config(_Model, file=path)
