"""Settings that cannot work stop ``waterflow agent`` at start-up with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_a_temporal_tls_settings_mistake_is_a_startup_error_not_retried(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_TEMPORAL_")}
    env["WATERFLOW_TEMPORAL_TLS_CERT"] = str(tmp_path / "client.pem")  # the key is missing
    done = subprocess.run(
        [sys.executable, "-P", "-m", "waterflow_agent", "--name", "x", "--workdir", str(tmp_path / "work"),
         "--temporal-address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "WATERFLOW_TEMPORAL_TLS_CERT and _TLS_KEY must be set together" in done.stderr
    assert "retrying" not in done.stderr and "Traceback" not in done.stderr


def test_a_work_directory_that_cannot_be_created_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "waterflow_agent", "--name", "x", "--workdir", str(blocker / "work"),
         "--temporal-address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"cannot create the work directory {blocker / 'work'}: Not a directory" in done.stderr
    assert "Traceback" not in done.stderr
