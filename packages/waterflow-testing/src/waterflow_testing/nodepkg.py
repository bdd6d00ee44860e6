"""Node packages laid out the way pip installs them, for tests of real entry point discovery."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = ["remove_node_package", "write_node_package"]


def write_node_package(
    root: str | os.PathLike[str],
    distribution: str,
    module: str,
    source: str,
    *,
    version: str = "1.0.0",
    entry_point: str | None = None,
    groups: Sequence[str] = ("waterflow.nodes",),
) -> Path:
    """Install a one-module plugin package into ``root`` the way pip would lay it out.

    Writes ``<root>/<module>.py`` (``source``, dedented) and a ``.dist-info`` whose
    ``entry_points.txt`` registers ``module`` as ``entry_point`` (default: the module name) in
    each of ``groups`` (default: ``waterflow.nodes``). Any previous version of the same
    distribution is removed first, so calling it again is an upgrade.
    """
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    remove_node_package(root_path, distribution)
    (root_path / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = root_path / f"{_normalize(distribution)}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "\n".join(f"[{group}]\n{entry_point or module} = {module}\n" for group in groups)
    )
    return root_path


def remove_node_package(root: str | os.PathLike[str], distribution: str) -> None:
    """Uninstall what :func:`write_node_package` wrote (the module file stays, like a stale .py)."""
    for dist_info in Path(root).glob(f"{_normalize(distribution)}-*.dist-info"):
        for child in dist_info.iterdir():
            child.unlink()
        dist_info.rmdir()


def _normalize(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()
