"""The command line that starts an agent as a child process.

Owned by the agent because it spells the agent's own CLI; ``waterflow dev`` and the test fixtures
of waterflow-testing build their agent children with it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

__all__ = ["agent_argv"]


def agent_argv(
    name: str,
    groups: Iterable[str],
    *,
    temporal_address: str,
    namespace: str,
    workdir: str | os.PathLike[str],
    args: Sequence[str] = (),
) -> list[str]:
    """The argv of a ``python -P -m waterflow_agent`` child with this interpreter (``args`` appended).

    ``-P``: the working directory, which its steps may write, is never importable, not even while
    the agent starts.
    """
    command = [sys.executable, "-P", "-m", "waterflow_agent", "--name", name]
    for group in groups:
        command += ["--group", group]
    return [
        *command,
        "--temporal-address",
        temporal_address,
        "--namespace",
        namespace,
        "--workdir",
        os.fspath(workdir),
        *args,
    ]
