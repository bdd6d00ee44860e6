"""Every package under packages/ builds its own wheel, and the wheels install together."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").exists())
EXPECTED = {
    "waterflow-core", "waterflow-server", "waterflow-agent", "waterflow-sdk", "waterflow-node-shell",
    "waterflow-node-http", "waterflow-node-file", "waterflow-node-docker", "waterflow-node-flow", "waterflow-testing",
}


def test_workspace_has_the_ten_distributions() -> None:
    names = {tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"] for p in PACKAGES}
    assert names == EXPECTED
    for package in PACKAGES:
        assert (package / "tests").is_dir(), f"{package.name} has no tests/ folder"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("wheels")
    for package in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
            cwd=package, check=True, capture_output=True,
        )
    return sorted(out.glob("*.whl"))


def test_each_package_builds_a_wheel(wheels: list[Path]) -> None:
    built = {w.name.split("-")[0].replace("_", "-") for w in wheels}
    assert built == EXPECTED
    core = next(w for w in wheels if w.name.startswith("waterflow_core-"))
    names = zipfile.ZipFile(core).namelist()
    assert "waterflow_core/expressions/grammar.lark" in names
    assert "waterflow_core/dsl/loader.py" in names


def test_wheels_install_together_with_siblings_from_the_workspace(wheels: list[Path], tmp_path: Path) -> None:
    # uv comes with hatch, next to the interpreter hatch was installed into; PATH may lack it
    # (e.g. pyenv shims not yet rehashed on a fresh machine).
    beside_hatch = Path(sys.base_prefix) / "bin" / "uv"
    uv = shutil.which("uv") or (str(beside_hatch) if beside_hatch.exists() else None)
    assert uv, "uv is needed to build the test venv (it is installed with hatch)"
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    # Only our wheels are offered for waterflow-*: siblings must never come from the index.
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), *map(str, wheels)], check=True, env=env
    )
    probe = "import waterflow_core.dsl, waterflow_server, waterflow_agent, waterflow_sdk, waterflow_node_shell"
    subprocess.run([str(python), "-c", probe], check=True)
