"""Isolation attacks through the whole stack: a step plants a plugin or a ``.pth`` file where the
agent looks, reads its parent's environment, or (with ``--run-as``) tries to reach anything of the
agent's; each is refused or harmless, and legitimate runs still work."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing import AgentProcess, ChildProcess, unique_name, write_node_package

SECRET = f"s3cret-{uuid.uuid4().hex}"

PROBE_NODE = """
from pydantic import BaseModel
from waterflow_core import Node, hookimpl

class Probe(Node):
    type = "e2e/probe"
    class Outputs(BaseModel):
        ok: bool
    async def run(self, ctx, inputs):
        return self.Outputs(ok=True)

@hookimpl
def waterflow_register_nodes():
    return [Probe]
"""

PLANT = """
name: plant
inputs:
  cwd: {{type: string, required: true}}
  user-site: {{type: string, required: true}}
  marker: {{type: string, required: true}}
jobs:
  plant:
    runs-on: {group}
    steps:
      - uses: exec/shell
        env:
          AGENT_CWD: $<< inputs.cwd >>
          USER_SITE: $<< inputs.user-site >>
          MARKER: $<< inputs.marker >>
        with:
          command: |
            plant() {{
              info="$1/planted_pkg-1.0.dist-info"
              mkdir -p "$info"
              printf 'Metadata-Version: 2.1\\nName: planted-pkg\\nVersion: 1.0\\n' > "$info/METADATA"
              printf '[waterflow.nodes]\\nplanted = planted_mod\\n' > "$info/entry_points.txt"
              printf 'open("%s", "w").close()\\n' "$MARKER.$2" > "$1/planted_mod.py"
            }}
            plant "$AGENT_CWD" cwd        # python -m put it first on sys.path
            plant "$PWD" workdir          # the steps' own directory
            mkdir -p "$USER_SITE"         # scanned for new .pth files before
            code='import pathlib; pathlib.Path("%s.pth").write_text("pwned")\\n'
            printf "$code" "$MARKER" > "$USER_SITE/zz-planted.pth"
            printf "$code" "$MARKER" > "$AGENT_CWD/zz-planted.pth"
"""


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temp directory every user can search (pytest's tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="waterflow-e2e-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def wait_until(probe: Callable[[], bool], timeout: float = 120.0) -> None:
    """Poll ``probe`` until it holds; fail after ``timeout`` seconds (a liveness bound)."""
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"not true within {timeout:.0f}s"
        time.sleep(0.2)


def test_planted_plugins_and_pth_files_never_load(start_server, temporal_dev, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group, name = unique_name("group"), unique_name("agent")
    site, user_base, home = tmp_path / "site", tmp_path / "userbase", tmp_path / "agent"
    site.mkdir()
    home.mkdir()
    user_site = user_base / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    marker = tmp_path / "pwned"
    # Started the way people start it by hand, without -P: its working directory is on sys.path.
    agent = ChildProcess(
        [sys.executable, "-m", "waterflow_agent", "--name", name, "--group", group,
         "--temporal-address", temporal_dev.address, "--namespace", temporal_dev.namespace,
         "--workdir", str(home / "work"), "--reload-poll-interval", "1s"],
        workdir=home,
        log_path=tmp_path / "agent.log",
        env={"PYTHONPATH": str(site), "PYTHONUSERBASE": str(user_base)},
    ).start()
    try:
        agent.wait_for_output(r"\bready\b")
        server = start_server()
        with Client(server.url) as client:
            run = client.wait(
                client.submit(
                    textwrap.dedent(PLANT.format(group=group)),
                    inputs={"cwd": str(home), "user-site": str(user_site), "marker": str(marker)},
                ).id,
                timeout=180,
                poll=0.2,
            )
            assert run.succeeded, run.error
            assert (home / "planted_pkg-1.0.dist-info").is_dir() and (user_site / "zz-planted.pth").is_file()
            # A legitimate install afterwards: once the agent serves it, it has rescanned since the plant.
            write_node_package(site, "e2e-probe", f"e2e_probe_{uuid.uuid4().hex[:8]}", PROBE_NODE)
            wait_until(
                lambda: any(a.name == name and any("e2e/probe" in n for n in a.nodes) for a in client.agents())
            )
        assert list(tmp_path.glob("pwned*")) == [], "planted code ran inside the agent"
        assert "planted" not in agent.output
        assert "working directory was on sys.path" in agent.output
    finally:
        agent.stop()


ENVIRON = """
name: environ
inputs:
  dir: {{type: string, required: true}}
jobs:
  read:
    runs-on: {group}
    steps:
      - id: ancestors
        uses: exec/shell
        env: {{DIR: $<< inputs.dir >>}}
        with:
          # Every ancestor's initial environment (the step's parent may be a shell or a wrapper)
          # and its own, into files the test reads directly: no masking in between.
          command: |
            pid=$$
            while [ "$pid" -gt 1 ]; do
              cat /proc/$pid/environ 2>/dev/null | tr '\\0' '\\n'
              pid=$(awk '/^PPid:/ {{print $2}}' /proc/$pid/status)
            done > "$DIR/ancestors"
            env > "$DIR/env"
            tr '\\0' ' ' < /proc/$PPID/cmdline > "$DIR/parent"
      - id: resolve
        uses: exec/shell
        env: {{T: $<< secrets.TOKEN >>}}
        with:
          command: echo "sha=$(printf '%s' "$T" | sha256sum | cut -d' ' -f1)" >> "$WATERFLOW_OUTPUT"
"""


def test_steps_cannot_read_secrets_from_the_agent_environment(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group], env={"WATERFLOW_SECRET_TOKEN": SECRET})
    server = start_server()
    with Client(server.url) as client:
        run = client.wait(
            client.submit(textwrap.dedent(ENVIRON.format(group=group)), inputs={"dir": str(tmp_path)}).id,
            timeout=180,
            poll=0.2,
        )
    assert run.succeeded, run.error
    assert "waterflow_agent" in (tmp_path / "parent").read_text()  # the parent really is the agent
    for name in ("ancestors", "env"):
        seen = (tmp_path / name).read_text()
        assert "PATH=" in seen  # the environments really were read
        assert SECRET not in seen and "WATERFLOW_SECRET_TOKEN" not in seen, name
    # The agent still resolves the secret it no longer has in its environment.
    steps = {step.id: step for _, step in run.steps()}
    assert steps["resolve"].outputs["sha"] == hashlib.sha256(SECRET.encode()).hexdigest()


RUN_AS = """
name: run-as
inputs:
  private: {{type: string, required: true}}
jobs:
  probe:
    runs-on: {group}
    steps:
      - id: who
        uses: exec/shell
        env:
          T: $<< secrets.TOKEN >>
          PRIVATE: $<< inputs.private >>
        with:
          command: |
            echo "user=$(id -un) group=$(id -gn) home=$HOME pwd=$PWD"
            touch mine && echo "cwd-writable=yes"
            echo "secret-len=${{#T}}"
            cat /proc/$PPID/environ > /dev/null 2>&1 || echo "agent-environ=denied"
            cat "$PRIVATE/secrets/TOKEN" > /dev/null 2>&1 || echo "secret-file=denied"
            touch "$PRIVATE/site/planted.pth" 2>/dev/null || echo "plugin-dir=denied"
            touch "$PRIVATE/work/planted" 2>/dev/null || echo "agent-workdir=denied"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs the agent to run as root")
def test_run_as_an_unprivileged_user(start_server, start_agent, temporal_dev, public_tmp: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    # pytest's temp directories are private to root: the agent refuses, naming the reason.
    refused = start_agent(unique_name("agent"), [group], args=["--run-as", "nobody"], ready=False)
    assert refused.wait(120) != 0
    assert "is not searchable by nobody" in refused.output

    secrets = public_tmp / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "TOKEN").write_text(SECRET + "\n")
    (public_tmp / "site").mkdir()
    agent = AgentProcess(
        unique_name("agent"),
        [group],
        address=temporal_dev.address,
        namespace=temporal_dev.namespace,
        workdir=public_tmp,
        env={"WATERFLOW_SECRETS_DIR": str(secrets), "PYTHONPATH": str(public_tmp / "site")},
        args=["--run-as", "nobody"],
    ).start()
    try:
        agent.wait_ready()
        server = start_server()
        with Client(server.url) as client:
            run = client.wait(
                client.submit(textwrap.dedent(RUN_AS.format(group=group)), inputs={"private": str(public_tmp)}).id,
                timeout=180,
                poll=0.2,
            )
    finally:
        agent.stop()
    assert run.succeeded, run.error
    seen = {k: v for k, _, v in (line.partition("=") for line in run.steps()[0][1].outputs["stdout"].split())}
    steps_dir = public_tmp / "work" / "steps"
    nobody = pwd.getpwnam("nobody")
    group_name = grp.getgrgid(nobody.pw_gid).gr_name
    identity = (seen["user"], seen["group"], seen["home"], seen["pwd"])
    assert identity == ("nobody", group_name, nobody.pw_dir, str(steps_dir))
    assert seen["cwd-writable"] == "yes" and (steps_dir / "mine").stat().st_uid == nobody.pw_uid
    assert seen["secret-len"] == str(len(SECRET))
    for what in ("agent-environ", "secret-file", "plugin-dir", "agent-workdir"):
        assert seen.get(what) == "denied", what
