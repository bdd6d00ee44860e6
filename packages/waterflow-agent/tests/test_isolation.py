"""Start-up isolation: nothing steps can write is importable; same-user processes cannot inspect the agent."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

import waterflow_agent
from waterflow_agent.isolation import isolate_imports

pytestmark = pytest.mark.unit

SYSTEM_PYTHON = Path("/usr/bin/python3")
AGENT_SRC = Path(waterflow_agent.__file__).resolve().parents[1]


def test_working_directory_and_step_dirs_leave_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, workdir, library = tmp_path / "cwd", tmp_path / "work", tmp_path / "lib"
    for d in (cwd, workdir / "steps", library):
        d.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", ["", str(cwd), "relative", str(workdir / "steps"), str(library)])
    removed = isolate_imports(workdir)
    assert sys.path == [str(library)]
    assert removed == ["", str(cwd), "relative", str(workdir / "steps")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run both processes as another user")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="needs a Python every user can run (/usr/bin/python3)")
@pytest.mark.parametrize("undumpable", [True, False])
def test_undumpable_process_hides_its_environ_from_its_own_user(undumpable: bool) -> None:
    nobody = pwd.getpwnam("nobody")
    script = (
        "import sys, time\n"
        "from waterflow_agent.isolation import make_undumpable\n"
        "assert make_undumpable() if sys.argv[1] == '1' else True\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    target = subprocess.Popen(
        [str(SYSTEM_PYTHON), "-c", script, "1" if undumpable else "0"],
        env={"PYTHONPATH": str(AGENT_SRC), "PLANTED_VALUE": "visible-in-environ"},
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout is not None and target.stdout.readline().strip() == "ready"
        # The attack of a step running as the same user: read the agent's initial environment.
        reader = subprocess.run(
            ["cat", f"/proc/{target.pid}/environ"],
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        target.kill()
        target.wait()
    if undumpable:
        assert reader.returncode != 0 and "Permission denied" in reader.stderr
    else:  # the control: without it, the same user reads it
        assert "visible-in-environ" in reader.stdout
