"""Every package under packages/ builds its own wheel, and each deployable installs on its own.

Venvs are made from the wheels built here (siblings never come from the package index; third-party
dependencies do), the way an operator installs one part on one machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # builds wheels and venvs

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").exists())
EXPECTED = {
    "waterflow-core", "waterflow-server", "waterflow-agent", "waterflow-sdk", "waterflow-testing",
    "waterflow-node-shell", "waterflow-node-http", "waterflow-node-file", "waterflow-node-docker",
    "waterflow-node-flow",
}
DEV_ONLY_MODULES = ("devserver.py", "processes.py", "testing.py", "testing_harness.py")


def _project(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text())["project"]


def test_workspace_has_the_ten_distributions() -> None:
    names = {_project(p)["name"] for p in PACKAGES}
    assert names == EXPECTED
    for package in PACKAGES:
        assert (package / "tests").is_dir(), f"{package.name} has no tests/ folder"


def test_sibling_dependencies_are_pinned_to_the_workspace_version() -> None:
    versions = {_project(p)["name"]: _project(p)["version"] for p in PACKAGES}
    assert len(set(versions.values())) == 1, f"the distributions disagree on the version: {versions}"
    (version,) = set(versions.values())
    compatible = "~=" + version
    for package in PACKAGES:
        project = _project(package)
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for requirement in requirements:
            name = re.split(r"[\s<>=~!\[;]", requirement, maxsplit=1)[0]
            if name in EXPECTED:
                expected = name + compatible
                assert requirement == expected, f"{project['name']}: {requirement!r} should be {expected}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    for package in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
            cwd=package, check=True, capture_output=True,
        )
    return {w.name.split("-")[0].replace("_", "-"): w for w in out.glob("*.whl")}


def test_each_package_builds_a_wheel(wheels: dict[str, Path]) -> None:
    assert set(wheels) == EXPECTED
    names = zipfile.ZipFile(wheels["waterflow-core"]).namelist()
    assert "waterflow_core/expressions/grammar.lark" in names
    assert "waterflow_core/dsl/loader.py" in names
    shipped = [n for n in names if n.rsplit("/", 1)[-1] in DEV_ONLY_MODULES]
    assert not shipped, f"dev/test machinery ships in waterflow-core: {shipped}"


def _venv_with(tmp_path: Path, wheels: dict[str, Path], *distributions: str) -> Path:
    """A fresh venv holding exactly these wheels (and their third-party dependencies)."""
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    # --no-index for siblings is not possible with third-party deps from the index; instead every
    # sibling a distribution needs is offered as a wheel, and the check below proves none was missing.
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         *(str(wheels[d]) for d in distributions)],
        check=True, capture_output=True, text=True,
    )
    return venv


def _installed(venv: Path) -> set[str]:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {name for name in out.split() if name.startswith("waterflow-")}


def _waterflow(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "waterflow"), *args], capture_output=True, text=True, timeout=120)


def test_a_server_only_venv_gives_waterflow_server_and_dev(wheels: dict[str, Path], tmp_path: Path) -> None:
    server = ("waterflow-core", "waterflow-sdk", "waterflow-node-flow", "waterflow-server")
    venv = _venv_with(tmp_path, wheels, *server)
    assert _installed(venv) == set(server)
    for command in ("server", "dev"):
        result = _waterflow(venv, command, "--help")
        assert result.returncode == 0, result.stderr
        assert f"Usage: waterflow {command}" in result.stdout
    # Without the dev extra, `waterflow dev` says what is missing instead of failing on an import.
    result = _waterflow(venv, "dev", "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    assert "waterflow-server[dev]" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_agent_only_venv_gives_waterflow_agent_and_no_pytest_plugin(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = _venv_with(tmp_path, wheels, "waterflow-core", "waterflow-sdk", "waterflow-agent")
    assert _installed(venv) == {"waterflow-core", "waterflow-sdk", "waterflow-agent"}
    result = _waterflow(venv, "agent", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: waterflow agent" in result.stdout
    plugins = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m; "
         "print([e.value for e in m.entry_points(group='pytest11') if e.dist.name.startswith('waterflow')])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    assert plugins == "[]", f"an agent venv registers Waterflow pytest plugins: {plugins}"


def test_the_sdk_alone_gives_a_client_only_cli(wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = _venv_with(tmp_path, wheels, "waterflow-core", "waterflow-sdk")
    result = _waterflow(venv, "--help")
    assert result.returncode == 0, result.stderr
    assert "submit" in result.stdout
    assert "agent" not in result.stdout.split("Commands:")[1].split()
    result = _waterflow(venv, "server", "--help")
    assert result.returncode == 2
    assert "No such command 'server'" in result.stderr
