"""``waterflow rerun``: a new run of a finished run that skips what succeeded there (ADR 0039)."""

from __future__ import annotations

import click

from .cli import WATCH_HELP, _check_watch, _client, _report_started, client_options


@click.command()
@click.argument("run_id", metavar="ID")
@click.option("--failed-only", is_flag=True, help="Skip every job and server that succeeded in run ID.")
@click.option(
    "--from-step",
    metavar="JOB/STEP",
    help="Resume job JOB at step STEP: the steps before it that succeeded, and the jobs JOB needs that "
    "succeeded, are skipped.",
)
@click.option("--id", "new_id", help="The rerun's id (default: generated); sending it again starts nothing new.")
@click.option("--wait", is_flag=True, help="Wait for the rerun to finish; exit 0 only if it succeeded.")
@click.option("--watch", is_flag=True, help=WATCH_HELP)
@click.option(
    "--timeout", type=float, default=None, help="With --wait/--watch: give up waiting after this many seconds."
)
@click.option("--poll", type=float, default=1.0, show_default=True, help="With --wait: seconds between status checks.")
@client_options
def rerun(
    run_id: str,
    failed_only: bool,
    from_step: str | None,
    new_id: str | None,
    wait: bool,
    watch: bool,
    timeout: float | None,
    poll: float,
    server: str,
    output: str,
) -> None:
    """Start a new run of finished run ID with its workflow and inputs, and print the new id.

    Without options every step runs again. Skipped steps read "skipped: succeeded in run ID" and
    keep the outputs they had there (later steps and needs read them); a failed rerun never
    compensates them. `waterflow status ID` lists a run's reruns.
    """
    _check_watch(watch, output)
    with _client(server) as client:
        ref = client.rerun(run_id, failed_only=failed_only, from_step=from_step, new_id=new_id)
        _report_started(client, ref, wait=wait, watch=watch, timeout=timeout, poll=poll, output=output)
