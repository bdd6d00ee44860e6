"""deploy/: the compose file validates, and install-agent.sh installs a working agent.

``docker-compose config`` checks compose.yaml with the secrets files deploy/init-secrets makes.
install-agent.sh runs into a throwaway root (``--root``) with wheels built from this checkout;
the venv it makes runs a real agent against the dev Temporal, and bad values are refused before
anything is written. Building and running the images is not tested here (deploy/README.md says
why).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from waterflow_testing.devserver import DevServer
from waterflow_testing.docker import skip_or_fail
from waterflow_testing.processes import read_log, spawn_logged, stop_process_blocking

pytestmark = pytest.mark.integration  # builds wheels and venvs, runs docker-compose and an agent

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
INSTALL = DEPLOY / "install-agent.sh"
AGENT_DISTRIBUTIONS = (
    "waterflow-core", "waterflow-sdk", "waterflow-agent",
    "waterflow-node-shell", "waterflow-node-http", "waterflow-node-file",
)
ROOT_ONLY = "install-agent.sh creates a user and root-owned files: run the test as root"
LIVENESS_TIMEOUT = 60.0


def _deploy_copy(tmp_path: Path) -> Path:
    """deploy/ without what build-wheels and init-secrets made in the checkout."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("wheels", "secrets", ".env"))
    return copy


def _compose_config(deploy: Path) -> dict:
    if shutil.which("docker-compose") is None:
        skip_or_fail("no `docker-compose` command on PATH (apt-get install docker-compose)")
    result = subprocess.run(
        ["docker-compose", "-f", str(deploy / "compose.yaml"), "config"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_validates_with_the_secrets_init_secrets_makes(tmp_path: Path) -> None:
    deploy = _deploy_copy(tmp_path)
    (deploy / ".env").write_text("WATERFLOW_AGENT_NAME=web7\nWATERFLOW_AGENT_GROUPS=web all\n")
    subprocess.run([str(deploy / "init-secrets")], check=True, capture_output=True)
    secrets = {path.name: path for path in (deploy / "secrets").iterdir()}
    assert set(secrets) == {"postgres.env", "server.env", "agent.env"}
    assert stat.S_IMODE((deploy / "secrets").stat().st_mode) == 0o700
    for path in secrets.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    token = secrets["server.env"].read_text().strip().removeprefix("WATERFLOW_API_TOKEN=")
    assert len(token) == 64

    config = _compose_config(deploy)
    services = config["services"]
    assert set(services) == {"postgresql", "temporal", "server", "agent"}
    server, agent = services["server"], services["agent"]
    assert server["environment"]["WATERFLOW_API_TOKEN"] == token
    assert server["environment"]["WATERFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "/healthz" in " ".join(server["healthcheck"]["test"])
    # Published on the host's loopback only: a TLS proxy goes in front.
    assert server["ports"] == ["127.0.0.1:8080:8080/tcp"]
    assert agent["environment"]["WATERFLOW_AGENT_NAME"] == "web7"
    assert agent["environment"]["WATERFLOW_AGENT_GROUPS"] == "web all"
    assert "agent-workdir:/var/lib/waterflow" in " ".join(str(v) for v in agent["volumes"])
    for name in ("server", "agent"):
        service = services[name]
        assert service["cap_drop"] == ["ALL"] and service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["depends_on"]["temporal"]["condition"] == "service_healthy", name
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
    # Temporal is reachable from Waterflow's containers only.
    assert "ports" not in services["temporal"] and "ports" not in services["postgresql"]
    assert "api" not in services["agent"]["networks"]

    # A second run keeps every secret (they are in use).
    before = {name: path.read_text() for name, path in secrets.items()}
    again = subprocess.run([str(deploy / "init-secrets")], check=True, capture_output=True, text=True)
    assert again.stdout.count("kept") == 3
    assert {name: path.read_text() for name, path in secrets.items()} == before


def test_compose_file_names_no_secret_and_images_run_as_a_user() -> None:
    compose = (DEPLOY / "compose.yaml").read_text()
    for secret in ("WATERFLOW_API_TOKEN=", "POSTGRES_PASSWORD:", "POSTGRES_PWD:"):
        assert secret not in compose
    for dockerfile in ("server.Dockerfile", "agent.Dockerfile"):
        text = (DEPLOY / dockerfile).read_text()
        final_stage = text.rsplit("\nFROM ", 1)[1]
        assert "\nUSER 10001:10001\n" in final_stage, dockerfile
        # Waterflow's distributions are installed from the wheel files, not by name from an index.
        install = text.split("pip install", 1)[1].split("\n\n", 1)[0]
        assert "/wheels/waterflow_core-*.whl" in install
        assert " waterflow-" not in install, dockerfile


def _build_wheels(out: Path, distributions: tuple[str, ...]) -> Path:
    """Wheels of these workspace packages, built the way tests/test_workspace.py builds them."""
    for distribution in distributions:
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
            cwd=REPO / "packages" / distribution, check=True, capture_output=True,
        )
    return out


@pytest.fixture(scope="module")
def agent_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheels(tmp_path_factory.mktemp("wheels"), AGENT_DISTRIBUTIONS)


def _install(root: Path, wheels: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--wheels", str(wheels), "--python", sys.executable, *args],
        capture_output=True, text=True, timeout=600, check=False,
    )


def _env_file(path: Path) -> dict[str, str]:
    """The variables systemd's EnvironmentFile= reads from ``path`` (the subset the script writes)."""
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
    return values


def _verify_unit(root: Path, unit_file: Path, tmp_path: Path) -> None:
    """``systemd-analyze verify``: every key known, every path there (the unit's paths moved into ``root``)."""
    if shutil.which("systemd-analyze") is None:
        warnings.warn("no systemd-analyze: the unit's syntax was not verified", stacklevel=2)
        return
    text = unit_file.read_text()
    for path in ("/opt/waterflow-agent", "/var/lib/waterflow/agent", "/etc/waterflow/"):
        text = text.replace(path, f"{root}{path}")
    moved = tmp_path / "verify" / unit_file.name
    moved.parent.mkdir(exist_ok=True)
    moved.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(moved)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def _wait_for_ready(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + LIVENESS_TIMEOUT  # a liveness bound, not a performance claim
    while time.monotonic() < deadline and process.poll() is None:
        output = read_log(log)
        if " ready: polling " in output:
            return output
        time.sleep(0.2)
    raise AssertionError(f"the installed agent never reported ready (exit {process.poll()}):\n{read_log(log)}")


@pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_ONLY)
def test_install_agent_into_a_throwaway_root(
    agent_wheels: Path, tmp_path: Path, temporal_dev: DevServer
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    args = ("--name", "web1", "--group", "web", "--group", "all", "--temporal-address", "temporal.internal:7233")
    first = _install(root, agent_wheels, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created system user waterflow" in first.stdout

    venv = root / "opt" / "waterflow-agent"
    help_text = subprocess.run(
        [str(venv / "bin" / "python"), "-P", "-m", "waterflow_agent", "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "--run-as" in help_text
    assert "Usage: waterflow agent" in subprocess.run(
        [str(venv / "bin" / "waterflow"), "agent", "--help"], capture_output=True, text=True, timeout=120, check=True
    ).stdout

    env_file = root / "etc" / "waterflow" / "agent.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env_file.parent.stat().st_mode) == 0o700
    assert _env_file(env_file) == {
        "WATERFLOW_AGENT_NAME": "web1",
        "WATERFLOW_AGENT_GROUPS": "web all",
        "WATERFLOW_TEMPORAL_ADDRESS": "temporal.internal:7233",
        "WATERFLOW_TEMPORAL_NAMESPACE": "default",
        "WATERFLOW_AGENT_WORKDIR": "/var/lib/waterflow/agent",
    }
    unit_file = root / "etc" / "systemd" / "system" / "waterflow-agent.service"
    unit = unit_file.read_text().splitlines()
    for line in (
        "User=waterflow", "Group=waterflow", "EnvironmentFile=/etc/waterflow/agent.env",
        "ExecStart=/opt/waterflow-agent/bin/python -P -m waterflow_agent",
        "WorkingDirectory=/var/lib/waterflow/agent", "KillMode=mixed", "Restart=always",
        "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/waterflow/agent",
        "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=", "WantedBy=multi-user.target",
    ):
        assert line in unit, line
    _verify_unit(root, unit_file, tmp_path)
    passwd = (root / "etc" / "passwd").read_text().splitlines()
    (user,) = [entry.split(":") for entry in passwd if entry.startswith("waterflow:")]
    assert user[6] == "/usr/sbin/nologin"
    workdir = root / "var" / "lib" / "waterflow" / "agent"
    assert (workdir.stat().st_uid, stat.S_IMODE(workdir.stat().st_mode)) == (int(user[2]), 0o700)

    # The installed venv runs a real agent from the env file's settings (Temporal and workdir
    # pointed at this test's).
    env = {"PATH": os.environ["PATH"], **_env_file(env_file)}
    env |= {"WATERFLOW_TEMPORAL_ADDRESS": temporal_dev.address, "WATERFLOW_AGENT_WORKDIR": str(workdir)}
    log = tmp_path / "agent.log"
    process, _ = spawn_logged([str(venv / "bin" / "python"), "-P", "-m", "waterflow_agent"], log, env=env)
    try:
        assert "waterflow agent web1 ready: polling web, all, agent:web1" in _wait_for_ready(process, log)
    finally:
        stop_process_blocking(process, grace=30)

    # Again with the same options: nothing changes; a line of the operator's own is kept.
    with env_file.open("a") as extra:
        extra.write("WATERFLOW_TEMPORAL_TLS=true\n")
    files = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (env_file, unit_file)}
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
                            capture_output=True, text=True, check=True).stdout
    second = _install(root, agent_wheels, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "unchanged /etc/waterflow/agent.env" in second.stdout
    assert "unchanged /etc/systemd/system/waterflow-agent.service" in second.stdout
    assert "user waterflow exists" in second.stdout
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == files
    assert (root / "etc" / "passwd").read_text().splitlines() == passwd
    assert subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
                          capture_output=True, text=True, check=True).stdout == freeze

    # Other options rewrite the script's block only; --run-as makes a root agent with just the
    # capabilities it needs.
    third = _install(root, agent_wheels, "--name", "web1", "--group", "db", "--run-as", "nobody")
    assert third.returncode == 0, third.stdout + third.stderr
    settings = _env_file(env_file)
    assert settings["WATERFLOW_AGENT_GROUPS"] == "db"
    assert settings["WATERFLOW_AGENT_RUN_AS"] == "nobody"
    assert settings["WATERFLOW_TEMPORAL_TLS"] == "true"
    unit = unit_file.read_text().splitlines()
    assert "User=root" in unit
    assert not any(line.startswith("Group=") for line in unit)
    assert (
        "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_KILL" in unit
    )
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o711
    _verify_unit(root, unit_file, tmp_path)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--name", "web1\nExecStartPre=/bin/sh -c id"), "--name"),
        (("--name", "web1;reboot"), "--name"),
        (("--name", "web 1"), "--name"),
        (("--name", "web1", "--group", "web$(id)"), "--group"),
        (("--name", "web1", "--group", 'web"\nWATERFLOW_AGENT_RUN_AS=root'), "--group"),
        (("--name", "web1", "--temporal-address", "t:7233\nLD_PRELOAD=/tmp/x.so"), "--temporal-address"),
        (("--name", "web1", "--namespace", "ops%n"), "--namespace"),
        (("--name", "web1", "--prefix", "/opt/water flow"), "--prefix"),
        (("--name", "web1", "--workdir", "var/lib/agent"), "--workdir"),
        (("--name", "web1", "--workdir", "/var/lib/../../etc"), "--workdir"),
        (("--name", "web1", "--read-write", "/srv/%h"), "--read-write"),
        (("--name", "web1", "--user", "root;x"), "--user"),
        (("--name", "web1", "--run-as", "nobody\n"), "--run-as"),
        (("--name", "web1", "--node", "../evil"), "--node"),
    ],
)
def test_install_agent_refuses_bad_values_before_writing(args: tuple[str, ...], option: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = _install(root, tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"install-agent.sh: {option}: "), result.stderr
    assert list(root.iterdir()) == []


def test_install_agent_needs_a_package_source(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(INSTALL), "--root", str(tmp_path), "--name", "web1"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "--wheels DIR or --version VERSION" in result.stderr
    assert list(tmp_path.iterdir()) == []


BASE_IMAGE = "waterflow-build/python:3.11-bookworm"
IMAGE_BUILD_TIMEOUT = 1200  # debootstrap and two image builds: a hang, not a slow machine


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """server.Dockerfile and agent.Dockerfile built offline from this checkout's wheels."""
    if shutil.which("docker") is None:
        skip_or_fail("Docker is unavailable: no `docker` command on PATH")
    if _docker("info", check=False).returncode != 0:
        skip_or_fail("Docker is unavailable: `docker info` failed")
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        subprocess.run([str(DEPLOY / "build-base-image"), BASE_IMAGE], check=True, timeout=IMAGE_BUILD_TIMEOUT)
    context = tmp_path_factory.mktemp("image-context")
    for dockerfile in ("server.Dockerfile", "agent.Dockerfile"):
        shutil.copy(DEPLOY / dockerfile, context)
    subprocess.run(
        [str(DEPLOY / "build-wheels"), "--with-deps", "--out", str(context / "wheels")],
        check=True, capture_output=True, timeout=IMAGE_BUILD_TIMEOUT,
    )
    tags = {}
    for part in ("server", "agent"):
        tags[part] = f"waterflow-{part}:test"
        build = _docker(
            "build", "--network", "none", "-f", str(context / f"{part}.Dockerfile"),
            "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--build-arg", "PIP_INSTALL_OPTIONS=--no-index",
            "-t", tags[part], str(context), timeout=IMAGE_BUILD_TIMEOUT, check=False,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return tags


def _wait_for_log(container: str, text: str) -> str:
    deadline = time.monotonic() + LIVENESS_TIMEOUT  # a liveness bound, not a performance claim
    while time.monotonic() < deadline:
        logs = _docker("logs", container, check=False)
        output = logs.stdout + logs.stderr
        if text in output:
            return output
        if _docker("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip() != "true":
            break
        time.sleep(0.5)
    logs = _docker("logs", container, check=False)
    raise AssertionError(f"{container} never logged {text!r}:\n{logs.stdout}{logs.stderr}")


def test_images_run_a_server_and_an_agent_as_their_user(
    images: dict[str, str], temporal_dev: DevServer, tmp_path: Path
) -> None:
    import httpx

    from waterflow_testing.processes import free_port

    suffix = tmp_path.name.replace("_", "-").lower()
    agent, server, volume = f"wf-test-agent-{suffix}", f"wf-test-server-{suffix}", f"wf-test-{suffix}"
    token = "t" * 40
    port = free_port()
    # The host's network (this Docker has no bridge): the containers reach the test's Temporal on
    # 127.0.0.1, and the server listens on loopback only. Hardening as in compose.yaml.
    hardening = ("--init", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
                 "--tmpfs", "/tmp", "--network", "host", "-e", f"WATERFLOW_TEMPORAL_ADDRESS={temporal_dev.address}")
    try:
        _docker("run", "-d", "--name", agent, *hardening, "-v", f"{volume}:/var/lib/waterflow",
                "-e", f"WATERFLOW_AGENT_NAME={agent}", "-e", "WATERFLOW_AGENT_GROUPS=web all", images["agent"])
        _wait_for_log(agent, f"waterflow agent {agent} ready: polling web, all, agent:{agent}")
        assert _docker("exec", agent, "id", "-u").stdout.strip() == "10001"
        # The workdir lives on the volume, owned by the agent's user.
        listing = _docker("exec", agent, "ls", "-ln", "/var/lib/waterflow").stdout
        assert " 10001 10001 " in listing and "agent" in listing, listing

        _docker("run", "-d", "--name", server, *hardening, "-e", f"WATERFLOW_API_TOKEN={token}", images["server"],
                "waterflow", "server", "--host=127.0.0.1", f"--port={port}")
        _wait_for_log(server, "Waterflow API listening on")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{base}/v1/agents", timeout=10).status_code == 401
        headers = {"Authorization": f"Bearer {token}"}

        def agents() -> str:
            return httpx.get(f"{base}/v1/agents", headers=headers, timeout=10).text

        deadline = time.monotonic() + LIVENESS_TIMEOUT
        while agent not in agents() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert agent in agents()

        # SIGTERM through the init: both stop gracefully.
        for container in (agent, server):
            _docker("stop", "-t", "45", container, timeout=90)
            state = _docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
            logs = _docker("logs", container, check=False).stderr
            assert state == "0", f"{container} exited {state}:\n{logs}"
    finally:
        _docker("rm", "-f", agent, server, check=False)
        _docker("volume", "rm", "-f", volume, check=False)
