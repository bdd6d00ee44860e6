"""``--hooks FILE`` of ``waterflow server`` and ``waterflow dev``: the inbound webhooks (ADR 0037)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def hooks_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--hooks FILE`` (or ``WATERFLOW_HOOKS``)."""
    return click.option(
        "--hooks",
        "hooks_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="WATERFLOW_HOOKS",
        help="Hooks file (YAML): inbound webhooks POST /v1/hooks/NAME may start, each with its workflow, "
        "secret file and input mapping [env WATERFLOW_HOOKS].",
    )(func)


def hooks_settings(path: Path | None) -> dict[str, Any]:
    """The ``ServerSettings`` field of the hooks file (none without one); exit 2 naming any mistake."""
    if path is None:
        return {}
    from waterflow_sdk.config_layers import ConfigFailure

    from ..hooks_config import HooksConfigError, load_hooks

    try:
        return {"hooks": load_hooks(path)}
    except HooksConfigError as exc:
        raise ConfigFailure(str(exc)) from None
