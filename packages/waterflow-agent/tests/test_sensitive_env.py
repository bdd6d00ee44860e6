"""Secrets in the agent's environment leave it, the initial environment block included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from waterflow_agent.sensitive_env import HANDOFF_ENV, sensitive_names

pytestmark = pytest.mark.unit

# What a process started with secrets in its environment sees, and what its children see.
PROBE = """
import json, os, subprocess, sys
from waterflow_agent.sensitive_env import take_sensitive_environment
taken = take_sensitive_environment(sys.argv[1:])
handed = [v for v in open("/proc/self/environ", "rb").read().decode().split("\\0") if v.startswith("__HANDOFF__=")]
fd_open = False
if handed:
    try:
        os.fstat(int(handed[0].split("=", 1)[1]))
        fd_open = True
    except OSError:
        pass
child = subprocess.run(["sh", "-c", "cat /proc/$PPID/environ; echo; env"], capture_output=True, text=True)
print(json.dumps({
    "pid": os.getpid(), "taken": taken, "argv": sys.orig_argv, "fd_open": fd_open,
    "environ": open("/proc/self/environ", "rb").read().decode(), "child": child.stdout,
    "os_environ": dict(os.environ),
}))
""".replace("__HANDOFF__", HANDOFF_ENV)


def probe(env: dict[str, str], *prefixes: str) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not sensitive_names({k: v}, prefixes)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *prefixes],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_secrets_leave_the_initial_environment_and_children_never_see_them() -> None:
    secrets = {
        "WATERFLOW_SECRET_DB_PASSWORD": "pw-1a2b3c",
        "WATERFLOW_TEMPORAL_API_KEY": "key-4d5e6f",
        "WATERFLOW_API_TOKEN": "api-token-0j1k2l",  # `waterflow dev` may hold one; steps must not
        "MY_SECRET_TOKEN": "tok-7g8h9i",  # the env provider's custom prefix
    }
    seen = probe({**secrets, "WATERFLOW_AGENT_NAME": "keep-me"}, "MY_")
    assert seen["taken"] == secrets
    for place in ("environ", "child", "os_environ"):
        text = json.dumps(seen[place])
        for name, value in secrets.items():
            assert value not in text, (place, name)
            assert name not in text, (place, name)
    assert "WATERFLOW_AGENT_NAME=keep-me" in seen["environ"]
    # Re-executed (same process) with -P, and the descriptor the values came through is closed.
    assert seen["argv"][1] == "-P"
    assert not seen["fd_open"]


def test_no_secrets_no_reexecution() -> None:
    seen = probe({"WATERFLOW_AGENT_NAME": "plain"})
    assert seen["taken"] == {}
    assert "-P" not in seen["argv"]
    assert HANDOFF_ENV not in seen["environ"]


def test_sensitive_names() -> None:
    environ = {
        "WATERFLOW_SECRET_A": "",
        "WATERFLOW_SECRETS_DIR": "/d",
        "WATERFLOW_TEMPORAL_API_KEY": "k",
        "WATERFLOW_API_TOKEN": "t",
        "WATERFLOW_API_TOKEN_FILE": "/f",
        "X_B": "",
    }
    sensitive = ["WATERFLOW_API_TOKEN", "WATERFLOW_SECRET_A", "WATERFLOW_TEMPORAL_API_KEY"]
    assert sensitive_names(environ) == sensitive
    assert sensitive_names(environ, ["X_"]) == [*sensitive, "X_B"]
