"""What the agent leaves out to stay small (ADR 0045), checked in a fresh interpreter each."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_httpx_loads_without_its_command_line_and_still_works() -> None:
    code = (
        "import sys\n"
        "from waterflow_agent.footprint import skip_httpx_cli\n"
        "skip_httpx_cli()\n"
        "import httpx\n"
        "import waterflow_node_http\n"
        "print(sorted(m for m in ('httpx._main', 'rich', 'pygments') if sys.modules.get(m)))\n"
        "print(httpx.URL('http://127.0.0.1:1/x').host)\n"
    )
    assert _run(code).splitlines() == ["[]", "127.0.0.1"]


def test_without_the_guard_httpx_would_import_rich() -> None:
    # The guard is only worth having while httpx imports rich with itself; this fails once it stops.
    pytest.importorskip("rich", reason="rich is not installed here: httpx has no command line to skip")
    code = "import sys, httpx\nprint(bool(sys.modules.get('rich')))\n"
    assert _run(code) == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_malloc_arenas_are_limited_unless_the_variable_says_otherwise() -> None:
    code = "from waterflow_agent.footprint import limit_malloc_arenas\nprint(limit_malloc_arenas())\n"
    assert _run(code) == "True"
    done = subprocess.run(
        [sys.executable, "-P", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MALLOC_ARENA_MAX": "4", "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == "False", done.stderr
