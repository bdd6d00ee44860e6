"""Secrets given to the agent in its environment leave the environment before any step runs.

A step can read its parent's environment from ``/proc/$PPID/environ``, and that file shows the
environment the process was *started* with: removing a variable from ``os.environ`` does not change
it. So when the agent finds sensitive variables (``WATERFLOW_SECRET_*``, the env secret provider's
own prefix, ``WATERFLOW_TEMPORAL_API_KEY``, ``WATERFLOW_API_TOKEN``) in its environment, it
re-executes itself (same pid, same arguments, plus ``-P``) without them, handing their values to the
new image through an anonymous in-memory file whose descriptor number travels in ``HANDOFF_ENV``.
The new image reads and closes it before doing anything else. Its ``os.environ``, and so every
child's environment, never holds the values (ADR 0020). :func:`handoff_to_child` hands values the
same way to a child process (``waterflow dev`` to its local agent).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import NoReturn

SECRET_PREFIX = "WATERFLOW_SECRET_"  # noqa: S105 - a variable name prefix
SENSITIVE_NAMES = frozenset({"WATERFLOW_TEMPORAL_API_KEY", "WATERFLOW_API_TOKEN"})
"""Besides secrets: the agent's Temporal key, and an API token it never needs (``waterflow dev``
runs the agent beside a server that may hold one)."""
HANDOFF_ENV = "WATERFLOW_AGENT_HANDOFF_FD"

log = logging.getLogger(__name__)

_taken: dict[str, str] = {}
"""What this process took so far (the handed-over values included)."""


class HandoffError(Exception):
    """The re-executed agent could not read what its previous image handed over."""


def sensitive_names(environ: Mapping[str, str], prefixes: Iterable[str] = ()) -> list[str]:
    """The variables of ``environ`` that hold secrets."""
    starts = tuple({SECRET_PREFIX, *(p for p in prefixes if p)})
    return sorted(name for name in environ if name in SENSITIVE_NAMES or name.startswith(starts))


def take_sensitive_environment(prefixes: Iterable[str] = ()) -> dict[str, str]:
    """Take the sensitive variables out of this process; return every one taken so far.

    If the process environment holds any, this re-executes the process without them (it does not
    return), and the new image gets them back from this call. ``prefixes`` are extra name prefixes
    that hold secrets (the env secret provider's ``prefix`` option). ``python -m waterflow_agent``
    calls it before its heavy imports, which keeps a re-execution cheap; the command calls it
    again once its options are known.
    """
    handed = os.environ.pop(HANDOFF_ENV, None)
    if handed is not None:
        _taken.update(_receive(handed))
    names = sensitive_names(os.environ, prefixes)
    if names:
        if sys.executable and sys.orig_argv:
            _reexec_with({**_taken, **{name: os.environ[name] for name in names}})
        log.warning(
            "cannot re-execute the agent (embedded interpreter): %s stay readable in its initial "
            "environment (/proc/<pid>/environ)",
            ", ".join(names),
        )
        _taken.update({name: os.environ.pop(name) for name in names})
    return dict(_taken)


def _reexec_with(values: dict[str, str]) -> NoReturn:
    fd = _anonymous_file(json.dumps(values).encode("utf-8"), inheritable=True)  # for the new image
    env = {k: v for k, v in os.environ.items() if k not in values}
    env[HANDOFF_ENV] = str(fd)
    argv = list(sys.orig_argv)
    if not sys.flags.safe_path:
        argv.insert(1, "-P")  # the working directory must not be importable in the new image either
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606 - the same interpreter and arguments


@contextlib.contextmanager
def handoff_to_child(values: Mapping[str, str], env: Mapping[str, str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Hand ``values`` to a child agent process the way a re-executed agent receives them.

    Yields a descriptor of an anonymous file holding them, for ``pass_fds``, and the child's
    environment: ``env`` without the values' names, plus :data:`HANDOFF_ENV` naming the
    descriptor. Start the child inside the ``with``: the descriptor is closed on exit. It is not
    inheritable, so only the child that gets it through ``pass_fds`` can read it.
    """
    fd = _anonymous_file(json.dumps(dict(values)).encode("utf-8"), inheritable=False)
    try:
        child_env = {k: v for k, v in env.items() if k not in values and k != HANDOFF_ENV}
        child_env[HANDOFF_ENV] = str(fd)
        yield fd, child_env
    finally:
        os.close(fd)


def _anonymous_file(data: bytes, *, inheritable: bool) -> int:
    """A descriptor of an unnamed file holding ``data``, positioned at its start."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("waterflow-agent-handoff", 0)
    else:
        with tempfile.TemporaryFile() as file:
            fd = os.dup(file.fileno())
    os.set_inheritable(fd, inheritable)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _receive(handed: str) -> dict[str, str]:
    try:
        fd = int(handed)
    except ValueError:
        raise HandoffError(f"{HANDOFF_ENV}={handed!r} is not a file descriptor") from None
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except OSError as err:
        raise HandoffError(f"cannot read the environment handed over on fd {fd}: {err}") from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        values = json.loads(b"".join(chunks))
    except ValueError as err:
        raise HandoffError(f"malformed environment handed over on fd {fd}: {err}") from None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise HandoffError(f"malformed environment handed over on fd {fd}")
    return {str(k): v for k, v in values.items()}
