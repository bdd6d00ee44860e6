"""MkDocs hook: links from a page to files of the repository outside docs/ (deploy/README.md,
bench/README.md, examples/*.yaml) are checked and kept working in the built site.

MkDocs only knows the files under docs/, so it would report such a link as missing (which
``--strict`` turns into a failed build) even when the file exists. This hook resolves each
relative link whose target lies outside docs/: a target that does not exist is reported as a
warning (so ``mkdocs build --strict`` fails, as for any broken link); an existing one is
rewritten to ``<repo_url>/blob/main/<path>`` when ``repo_url`` is configured, else to the
repository path in code (the site has no copy of it to link to).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

# [text](target) outside fenced code; the target has no scheme and no spaces.
LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s:]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Check and rewrite the page's links to repository files outside docs/."""
    docs = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    source = Path(page.file.abs_src_path).resolve()
    repo_url = (config.get("repo_url") or "").rstrip("/")

    def rewrite(match: re.Match[str]) -> str:
        path, _, anchor = match["target"].partition("#")
        if not path or path.startswith("/"):
            return match[0]
        target = (source.parent / path).resolve()
        if target == docs or docs in target.parents:
            return match[0]  # MkDocs checks links inside docs/ itself
        if repo not in target.parents or not target.exists():
            log.warning("%s links to '%s', which does not exist in the repository", page.file.src_uri, path)
            return match[0]
        relative = target.relative_to(repo).as_posix()
        if repo_url:
            return f"[{match['text']}]({repo_url}/blob/main/{relative}{'#' + anchor if anchor else ''})"
        text = match["text"]
        return f"`{relative}`" if text.strip("`") == relative else f"{text} (`{relative}`)"

    parts, last = [], 0
    for fence in FENCE.finditer(markdown):  # links inside code blocks are text, not links
        parts += [LINK.sub(rewrite, markdown[last : fence.start()]), fence[0]]
        last = fence.end()
    parts.append(LINK.sub(rewrite, markdown[last:]))
    return "".join(parts)


def github_slug(value: str, separator: str = "-") -> str:
    """Heading anchors as GitHub makes them, so one link works on GitHub and in the site.

    Lower case; characters other than letters, digits, spaces, ``-`` and ``_`` are dropped;
    each space becomes ``separator`` (not collapsed: "The live view: `--watch`" gives
    ``the-live-view---watch``).
    """
    return re.sub(r"[^\w\- ]", "", value.strip().lower()).replace(" ", separator)


def on_config(config: Any) -> Any:
    """Make the table of contents use GitHub's heading anchors."""
    config["mdx_configs"].setdefault("toc", {})["slugify"] = github_slug
    return config
