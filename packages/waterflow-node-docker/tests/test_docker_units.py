"""The pure parts of the Docker nodes: input checks (attacks included), compose command lines, parsing.

Compose v2 is not installed on the test machines, so its command lines are checked here only;
v1 runs for real in the agent tests.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from waterflow_core.registry import NodeRegistry
from waterflow_node_docker import ComposeDownInputs, ComposeUpInputs, ExecInputs
from waterflow_node_docker.capture import StreamCapture
from waterflow_node_docker.compose_cli import Compose, detect, parse_version
from waterflow_node_docker.compose_config import parse_services, selected
from waterflow_node_docker.compose_nodes import default_project
from waterflow_node_docker.containers import Container
from waterflow_node_docker.engine import FrameReader, path, socket_path
from waterflow_node_docker.errors import DockerUnavailable
from waterflow_node_docker.roots import allowed_roots, resolve_file
from waterflow_testing import recording_context

pytestmark = pytest.mark.unit

V1 = Compose(("/usr/bin/docker-compose",), "1.29.2")
V2 = Compose(("/usr/bin/docker", "compose"), "2.24.5")
V2_STANDALONE = Compose(("/usr/local/bin/docker-compose",), "2.24.5")
FILES = ["/srv/app/compose.yaml", "/srv/app/override.yaml"]


def _error(inputs: type[Any], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        inputs.model_validate(data)
    return str(info.value)


# -- registration ---------------------------------------------------------------------------


def test_the_entry_point_registers_the_three_nodes() -> None:
    types = {entry["type"] for entry in NodeRegistry.from_plugins().catalog()}
    assert {"docker/exec", "docker/compose-up", "docker/compose-down"} <= types


# -- docker/exec inputs ---------------------------------------------------------------------


def test_exec_inputs_take_a_container_or_a_compose_service() -> None:
    by_name = ExecInputs.model_validate({"container": "web-1", "command": ["nginx", "-s", "reload"]})
    assert by_name.command == ["nginx", "-s", "reload"] and by_name.index is None
    by_service = ExecInputs.model_validate(
        {"project": "shop", "service": "web", "index": "2", "command": ["true"], "output-cap": "10"}
    )
    assert (by_service.project, by_service.service, by_service.index, by_service.output_cap) == ("shop", "web", 2, 10)
    assert "not both" in _error(ExecInputs, {"container": "c", "project": "p", "service": "s", "command": ["x"]})
    assert "give container, or both" in _error(ExecInputs, {"project": "p", "command": ["x"]})
    assert "needs project and service" in _error(ExecInputs, {"container": "c", "index": 2, "command": ["x"]})


def test_command_is_a_list_never_a_shell_string() -> None:
    assert "not a string" in _error(ExecInputs, {"container": "c", "command": "rm -rf /tmp/x"})
    assert "at least 1" in _error(ExecInputs, {"container": "c", "command": []})
    # Single-expression values keep their type; argv is text, coerced like GitHub does.
    coerced = ExecInputs.model_validate({"container": "c", "command": ["sleep", 5, True, None, {"a": 1}]})
    assert coerced.command == ["sleep", "5", "true", "", '{"a":1}']


@pytest.mark.parametrize("name", ["-it", "--privileged", "../containers/x/kill?signal=KILL", "a/b", "a b", "", "é"])
def test_container_names_that_could_be_options_or_paths_are_refused(name: str) -> None:
    assert "container" in _error(ExecInputs, {"container": name, "command": ["true"]})


@pytest.mark.parametrize(("field", "value"), [("project", "-p"), ("project", "Shop"), ("service", "--rm")])
def test_project_and_service_names_are_checked(field: str, value: str) -> None:
    data = {"project": "shop", "service": "web", "command": ["true"], field: value}
    assert "not valid" in _error(ExecInputs, data)


@pytest.mark.parametrize(
    "env", [{"A=B": "x"}, {"": "x"}, {"A\0B": "x"}, {"A": "x\0y"}], ids=["equals", "empty", "nul-key", "nul-value"]
)
def test_env_names_with_equals_or_nul_are_refused(env: dict[str, str]) -> None:
    assert "env" in _error(ExecInputs, {"container": "c", "command": ["true"], "env": env})
    assert "env" in _error(ComposeUpInputs, {"file": "c.yml", "env": env})


def test_nul_in_arguments_user_and_workdir_is_refused() -> None:
    assert "NUL" in _error(ExecInputs, {"container": "c", "command": ["echo", "a\0b"]})
    assert "user" in _error(ExecInputs, {"container": "c", "command": ["id"], "user": "--privileged"})
    assert "absolute" in _error(ExecInputs, {"container": "c", "command": ["pwd"], "workdir": "tmp"})
    ok = ExecInputs.model_validate({"container": "c", "command": ["id"], "user": "1000:1000", "workdir": "/tmp"})
    assert (ok.user, ok.workdir) == ("1000:1000", "/tmp")


# -- compose inputs -------------------------------------------------------------------------


def test_compose_inputs_defaults_and_durations() -> None:
    up = ComposeUpInputs.model_validate({"file": "compose.yaml"})
    assert (up.file, up.services, up.wait, up.wait_timeout, up.pull) == (["compose.yaml"], [], True, 120.0, "missing")
    up = ComposeUpInputs.model_validate(
        {"file": ["a.yml", "b.yml"], "services": "web", "wait": "false", "wait-timeout": "1m30s", "pull": "never"}
    )
    assert (up.file, up.services, up.wait, up.wait_timeout) == (["a.yml", "b.yml"], ["web"], False, 90)
    assert up.pull == "never"
    down = ComposeDownInputs.model_validate({"file": "c.yml", "timeout": "1500ms", "remove-orphans": "true"})
    assert (down.timeout, down.remove_orphans, down.volumes) == (2, True, False)  # whole seconds, rounded up
    assert "pull" in _error(ComposeUpInputs, {"file": "c.yml", "pull": "sometimes"})
    assert "wait-timeout" in _error(ComposeUpInputs, {"file": "c.yml", "wait-timeout": "0s"})
    assert "service" in _error(ComposeUpInputs, {"file": "c.yml", "services": ["web", "--build"]})
    assert "project" in _error(ComposeDownInputs, {"file": "c.yml", "project": "-v"})


# -- compose command lines (v2 is only checked here) ---------------------------------------


def test_v1_command_lines() -> None:
    base = ["/usr/bin/docker-compose", "-f", FILES[0], "-f", FILES[1], "-p", "shop"]
    assert not V1.v2 and V1.name == "docker-compose"
    assert V1.config(FILES, "shop") == [*base, "config"]
    assert V1.up(FILES, "shop", [], "missing") == [[*base, "up", "-d"]]
    assert V1.up(FILES, "shop", ["web"], "always") == [[*base, "pull", "web"], [*base, "up", "-d", "web"]]
    # v1 has no --pull: `never` is enforced by the node's own image check.
    assert V1.up(FILES, "shop", ["web", "db"], "never") == [[*base, "up", "-d", "web", "db"]]
    assert V1.down(FILES, "shop", volumes=True, remove_orphans=True, timeout=3) == [
        *base, "down", "-t", "3", "-v", "--remove-orphans"
    ]
    assert V1.down(FILES, "shop", volumes=False, remove_orphans=False, timeout=10) == [*base, "down", "-t", "10"]


def test_v2_command_lines() -> None:
    base = ["/usr/bin/docker", "compose", "--ansi", "never", "-f", FILES[0], "-f", FILES[1], "-p", "shop"]
    assert V2.v2 and V2.name == "docker compose"
    assert V2.config(FILES, "shop") == [*base, "config"]
    assert V2.up(FILES, "shop", [], "missing") == [[*base, "up", "-d"]]
    assert V2.up(FILES, "shop", ["web"], "always") == [[*base, "up", "-d", "--pull", "always", "web"]]
    assert V2.up(FILES, "shop", [], "never") == [[*base, "up", "-d", "--pull", "never"]]
    assert V2.down(FILES, "shop", volumes=True, remove_orphans=False, timeout=0) == [*base, "down", "-t", "0", "-v"]
    # A v2 standalone `docker-compose` binary takes v2's flags.
    assert V2_STANDALONE.v2 and V2_STANDALONE.name == "docker-compose"
    assert V2_STANDALONE.base(FILES[:1], "p") == [
        "/usr/local/bin/docker-compose", "--ansi", "never", "-f", FILES[0], "-p", "p"
    ]


@pytest.mark.parametrize(
    ("text", "version"),
    [("1.29.2\n", "1.29.2"), ("v2.24.5", "2.24.5"), ("2.27.0-desktop.1", "2.27.0"), ("", "unknown")],
)
def test_compose_versions(text: str, version: str) -> None:
    assert parse_version(text) == version


async def test_detection_prefers_the_plugin_and_falls_back_to_v1(tmp_path: Path) -> None:
    for program in ("docker", "docker-compose"):
        (tmp_path / program).write_text("#!/bin/sh\n")
        (tmp_path / program).chmod(0o755)
    answers = {"compose": (0, "v2.24.5\n"), "version": (0, "1.29.2\n")}

    async def probe(argv: list[str]) -> tuple[int, str]:
        return answers[argv[1]]

    plugin = await detect(probe, str(tmp_path), "a1")
    assert plugin == Compose((str(tmp_path / "docker"), "compose"), "2.24.5")
    answers["compose"] = (1, "")  # docker without the plugin
    assert await detect(probe, str(tmp_path), "a1") == Compose((str(tmp_path / "docker-compose"),), "1.29.2")
    with pytest.raises(DockerUnavailable) as info:
        await detect(probe, str(tmp_path / "empty"), "a1")
    assert not info.value.retryable and "agent a1" in str(info.value) and "docker-compose" in str(info.value)


# -- compose configuration ------------------------------------------------------------------

CONFIG = """
services:
  web: {image: 'nginx:1', depends_on: {api: {condition: service_healthy}}}
  api: {image: api, depends_on: [db]}
  db: {image: postgres}
  built: {build: {context: .}}
  debug: {image: busybox, profiles: [debug]}
"""


def test_selected_services_follow_dependencies_and_profiles() -> None:
    services = parse_services(CONFIG)
    assert services["web"].depends_on == ("api",) and services["built"].builds and services["debug"].profiles
    assert selected(services, ["web"], []) == ["api", "db", "web"]
    assert selected(services, [], []) == ["api", "built", "db", "web"]
    assert selected(services, [], ["debug"]) == ["api", "built", "db", "debug", "web"]
    with pytest.raises(ApplicationError) as info:
        selected(services, ["wbe"], [])
    assert info.value.non_retryable and "no service 'wbe'" in info.value.message
    assert "its services: api, built, db, debug, web" in info.value.message


def test_default_project_is_the_directory_name_normalised(tmp_path: Path) -> None:
    assert default_project(Path("/srv/My Shop.v2/compose.yaml")) == "myshopv2"
    with pytest.raises(ApplicationError):
        default_project(Path("/srv/___/compose.yaml"))


def test_compose_files_are_confined_to_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    compose = root / "app" / "compose.yaml"
    compose.write_text("services: {}\n")
    (root / "escape.yaml").symlink_to("/etc/passwd")
    roots = allowed_roots(tmp_path, {"WATERFLOW_FILE_ROOTS": str(root)})
    assert resolve_file("app/compose.yaml", root, roots) == compose
    assert resolve_file(str(compose), tmp_path, roots) == compose
    for raw, why in [
        ("/etc/passwd", "outside the allowed roots"),
        (str(root / "escape.yaml"), "outside the allowed roots"),
        ("app/../app/compose.yaml", "'..' is not allowed"),
        ("app/missing.yaml", "no such compose file"),
        ("-f", "no such compose file"),
    ]:
        with pytest.raises(ApplicationError) as info:
            resolve_file(raw, root, roots)
        assert why in info.value.message and info.value.non_retryable, raw
    assert allowed_roots(tmp_path, {}) == [tmp_path.resolve()]


# -- the Engine API's plumbing --------------------------------------------------------------


def test_frames_are_split_whatever_the_chunking() -> None:
    frames = [(1, b"out\n"), (2, b"err"), (1, b"")]
    stream = b"".join(struct.pack(">BxxxL", sid, len(data)) + data for sid, data in frames)
    for size in (1, 3, 8, len(stream)):
        reader = FrameReader()
        split = [frame for start in range(0, len(stream), size) for frame in reader.feed(stream[start : start + size])]
        assert split == frames


def test_api_paths_encode_each_name_as_one_segment() -> None:
    assert path("/containers/{}/json", "web-1") == "/containers/web-1/json"
    assert path("/images/{}/json", "busybox:1.36") == "/images/busybox%3A1.36/json"
    assert path("/containers/{}/json", "../x?y") == "/containers/..%2Fx%3Fy/json"


def test_docker_host_must_be_a_unix_socket() -> None:
    assert socket_path({}, "a1") == "/var/run/docker.sock"
    assert socket_path({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, "a1") == "/run/user/1000/docker.sock"
    with pytest.raises(DockerUnavailable) as info:
        socket_path({"DOCKER_HOST": "tcp://10.0.0.5:2375"}, "a1")
    assert not info.value.retryable and "agent a1" in str(info.value) and "tcp://10.0.0.5:2375" in str(info.value)


def test_capture_logs_lines_and_keeps_the_tail(tmp_path: Path) -> None:
    ctx, recorder = recording_context(tmp_path)
    capture = StreamCapture("stdout", 8, ctx.log)
    for piece in (b"one\ntw", b"o\nthr", "é\n".encode(), b"last"):
        capture.feed(piece)
    capture.close()
    assert recorder.messages("stdout") == ["one", "two", "thré", "last"]
    assert capture.truncated and capture.text() == "ré\nlast"  # 8 bytes: é is two
    quiet = StreamCapture("stdout", 100, None)
    quiet.feed(b"data\n")
    quiet.close()
    assert quiet.text() == "data\n" and not quiet.truncated


def test_container_state_from_inspect() -> None:
    def inspect(state: dict[str, Any], policy: str = "no") -> Container:
        return Container.from_inspect(
            {
                "Id": "abc",
                "Name": "/shop_web_1",
                "State": state,
                "Config": {"Image": "nginx", "Labels": {"com.docker.compose.service": "web",
                                                        "com.docker.compose.container-number": "2"}},
                "HostConfig": {"RestartPolicy": {"Name": policy}},
            }
        )

    healthy = inspect({"Status": "running", "Health": {"Status": "healthy", "Log": [{"Output": "ok\n"}]}})
    assert healthy.ready and not healthy.gone
    assert (healthy.name, healthy.number, healthy.service) == ("shop_web_1", 2, "web")
    unhealthy = inspect({"Status": "running", "Health": {"Status": "unhealthy", "Log": [{"Output": "refused\n"}]}})
    assert not unhealthy.ready and not unhealthy.gone
    assert unhealthy.describe() == "shop_web_1: unhealthy, last check: refused"
    exited = inspect({"Status": "exited", "ExitCode": 3})
    assert exited.gone and exited.describe() == "shop_web_1: exited (exit code 3)"
    assert not inspect({"Status": "exited", "ExitCode": 3}, "always").gone  # the daemon restarts it
    assert not inspect({"Status": "exited", "ExitCode": 3}, "on-failure").gone
    assert inspect({"Status": "exited", "ExitCode": 0}, "on-failure").gone
    assert inspect({"Status": "running"}).output().model_dump(by_alias=True) == {
        "id": "abc", "name": "shop_web_1", "service": "web", "number": 2, "state": "running", "health": "none",
        "exit-code": None, "image": "nginx",
    }
