"""The documentation builds as a site (mkdocs.yml, `mkdocs build --strict`), and a broken link fails it.

MkDocs comes with the hatch-test environment. Where it is missing the build tests are skipped with
the reason, except in CI (the ``CI`` variable set, as ``.ci/run`` does), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
ADRS = DOCS / "adr"
# What the pages link to outside docs/: copied with docs/ when the site is built elsewhere.
LINKED_OUTSIDE_DOCS = ("deploy", "bench", "examples")


def require_mkdocs() -> None:
    if importlib.util.find_spec("mkdocs") is not None:
        return
    reason = "mkdocs is not installed (it is in hatch.toml's hatch-test extra-dependencies)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must build the documentation site")
    pytest.skip(reason)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=300, check=False, cwd=config.parent,
    )  # fmt: skip


def test_the_site_builds_strict(tmp_path: Path) -> None:
    require_mkdocs()
    result = build(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index.html", "getting-started/index.html", "guides/troubleshooting/index.html", "adr/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    installation = (tmp_path / "site" / "getting-started" / "installation" / "index.html").read_text()
    assert "deploy/README.md" in installation  # a link outside docs/ is kept as the repository path


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The site's sources (mkdocs.yml, docs/ and what it links to) in a scratch directory."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy2(REPO / "mkdocs.yml", root / "mkdocs.yml")
    for name in ("docs", *LINKED_OUTSIDE_DOCS):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("link", "complaint"),
    [
        ("[missing page](../guides/no-such-page.md)", "no-such-page.md"),
        ("[missing heading](../guides/troubleshooting.md#no-such-heading)", "#no-such-heading"),
        ("[missing repository file](../../deploy/no-such-file.md)", "no-such-file.md"),
        ("[outside the repository](../../../../etc/passwd)", "etc/passwd"),
    ],
)
def test_a_broken_link_fails_the_build(copy: Path, link: str, complaint: str) -> None:
    require_mkdocs()
    page = copy / "docs" / "getting-started" / "index.md"
    page.write_text(page.read_text() + f"\nSee {link}.\n")
    result = build(copy / "mkdocs.yml", copy / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "getting-started/index.md" in output and complaint in output, output


def test_a_page_missing_from_the_navigation_fails_the_build(copy: Path) -> None:
    require_mkdocs()
    (copy / "docs" / "guides" / "orphan.md").write_text("# Orphan\n")
    result = build(copy / "mkdocs.yml", copy / "site")
    assert result.returncode != 0 and "guides/orphan.md" in result.stdout + result.stderr


# -- the ADR index ------------------------------------------------------------------------------


def adr_files() -> list[Path]:
    return sorted(ADRS.glob("[0-9][0-9][0-9][0-9]-*.md"))


def adr_facts(path: Path) -> tuple[str, str, str]:
    """An ADR's number, title (its heading after ``ADR NNNN:``) and status (first word)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    heading = re.fullmatch(r"# ADR (\d{4}): (.+)", lines[0] if lines else "")
    assert heading, f"docs/adr/{path.name}:1: the title must read '# ADR NNNN: <decision>'"
    status = next((m for line in lines[:10] if (m := re.match(r"-?\s*Status:\s*(\w+)", line))), None)
    assert status, f"docs/adr/{path.name}: no 'Status:' line near the top"
    return heading[1], heading[2], status[1].lower()


def index_problems(index_text: str) -> list[str]:
    rows = {m[1]: m[0] for m in re.finditer(r"^\|\s*\[\d{4}\]\(([^)]+)\).*$", index_text, re.M)}
    problems = []
    for path in adr_files():
        number, title, status = adr_facts(path)
        row = rows.pop(path.name, None)
        if row is None:
            problems.append(f"docs/adr/index.md: add | [{number}]({path.name}) | {title} | {status} |")
            continue
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if title not in cells:
            problems.append(f"docs/adr/index.md: the row of {path.name} must give its title {title!r}")
        if not any(cell.lower().startswith(status) for cell in cells[2:]):
            problems.append(f"docs/adr/index.md: the row of {path.name} must give its status {status!r}")
    problems += [f"docs/adr/index.md lists {name}, which is no ADR file" for name in rows]
    return problems


def test_the_adr_index_lists_every_adr_with_title_and_status() -> None:
    assert len(adr_files()) >= 30
    problems = index_problems((ADRS / "index.md").read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_the_adr_index_check_reports_each_problem() -> None:
    text = (ADRS / "index.md").read_text(encoding="utf-8")
    first, second = adr_files()[:2]
    _, title, _ = adr_facts(second)
    broken = re.sub(rf"^\|\s*\[\d{{4}}\]\({re.escape(first.name)}\).*\n", "", text, flags=re.M)
    broken = broken.replace(f"| {title} |", "| another title |")
    broken += "| [9999](9999-none.md) | Nothing | accepted |\n"
    report = "\n".join(index_problems(broken))
    assert f"add | [{first.name[:4]}]({first.name})" in report
    assert f"the row of {second.name} must give its title" in report
    assert "lists 9999-none.md, which is no ADR file" in report


# -- GitHub's heading anchors -------------------------------------------------------------------


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("repo_links", DOCS / "_hooks" / "repo_links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("The live view: `--watch`", "the-live-view---watch"),
        ("Outputs (`steps.<id>.outputs.*`)", "outputs-stepsidoutputs"),
        ("6. A step stays `running` and never starts", "6-a-step-stays-running-and-never-starts"),
        ("`POST /v1/workflows/{id}/signals/{name}` — answer an approval gate",
         "post-v1workflowsidsignalsname--answer-an-approval-gate"),
    ],
)  # fmt: skip
def test_heading_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert hook().github_slug(heading) == anchor
