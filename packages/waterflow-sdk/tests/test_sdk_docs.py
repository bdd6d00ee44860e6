"""docs/reference/sdk.md is what the generator writes, and its example runs against a real stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from waterflow_sdk import _docgen
from waterflow_testing import unique_name

DOC = Path(__file__).resolve().parents[3] / "docs" / "reference" / "sdk.md"


@pytest.mark.unit
def test_the_sdk_reference_is_generated_from_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == _docgen.render(), f"stale: run `{_docgen.GENERATOR}`"
    assert _docgen.main(["--check", str(DOC)]) == 0


@pytest.mark.unit
def test_the_reference_covers_every_public_method_of_both_clients() -> None:
    from waterflow_sdk import AsyncClient, Client

    page = DOC.read_text(encoding="utf-8")
    for cls in (Client, AsyncClient):
        public = [name for name in vars(cls) if not name.startswith("_")]
        missing = [name for name in public if f"{cls.__name__}.{name}(" not in page]
        assert not missing, missing
    # The two clients offer the same calls (close/aclose aside).
    assert {n for n in vars(Client) if not n.startswith("_")} - {"close"} == {
        n for n in vars(AsyncClient) if not n.startswith("_")
    } - {"aclose"}


@pytest.mark.unit
def test_check_says_when_the_page_is_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "sdk.md"
    stale.write_text(_docgen.render().replace("follow_logs", "tail_logs"), encoding="utf-8")
    assert _docgen.main(["--check", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err


@pytest.mark.integration
def test_the_example_runs(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    example = next(block for block in blocks if "follow_logs" in block)
    assert len(example.splitlines()) <= 30
    start_agent(unique_name("agent-sdk-doc"), ["demo"])
    server = start_server()
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    env = {**os.environ, "WATERFLOW_SERVER": server.url}
    env.pop("WATERFLOW_API_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "[greet/hello] hello, sdk" in lines
    assert lines[-1] == "succeeded hello, sdk"
