"""The ``waterflow`` command.

Client commands live here; other packages add theirs (``server``, ``dev``, ``agent``) through the
``waterflow_register_commands`` hook (entry point group ``waterflow.cli``), so with only the SDK
installed the CLI is client-only. Errors are one friendly line on stderr, never a traceback
(set ``WATERFLOW_DEBUG=1`` to see one). Exit statuses: 0 done, 1 a run that did not succeed or
a request that failed, 2 a wrong command line (usage, an option's value, an input), 130
interrupted (docs/reference/cli/client.md).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import userconfig
from .output import OUTPUTS, STRUCTURED, emit, emit_stream_item, say
from .params import Moment

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

WATCH_HELP = (
    "Show the run live until it ends: steps with state, agent, attempt, elapsed time and output "
    "(plain lines when stdout is not a terminal); exit 0 only if it succeeded."
)


# -- the group and its plugins ----------------------------------------------------------------


class WaterflowGroup(click.Group):
    """A click group that adds plugin commands the first time they are needed."""

    _loaded = False

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            from waterflow_core.plugins import PluginManager

            manager = PluginManager(strict=False)
            commands = manager.commands()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI away
            click.echo(f"warning: CLI plugins unavailable: {exc}", err=True)
            return
        for command in commands:
            if isinstance(command, click.Command) and command.name and command.name not in self.commands:
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugins()
            command = super().get_command(ctx, cmd_name)
        return command


# -- shared options and error handling --------------------------------------------------------


def output_option(func: F) -> F:
    """``--output text|table|json|yaml``."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUTS),
        default=userconfig.output_default(OUTPUTS, "text"),
        show_default="output in client.toml, else text",
        help="text for a person (table: listings in columns with a header); json or yaml: the API's fields, exact.",
    )(func)


def server_option(func: F) -> F:
    """``--server URL`` (env ``WATERFLOW_SERVER``)."""
    return click.option(
        "--server",
        envvar="WATERFLOW_SERVER",
        default=userconfig.server,
        show_default="server in client.toml, else http://127.0.0.1:8080",
        help="Waterflow server URL [env WATERFLOW_SERVER].",
    )(func)


def friendly_errors(func: F) -> F:
    """Print SDK errors once on stderr, never a traceback; exit 1 (2 when only inputs were wrong)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import WaterflowAPIError, WaterflowSDKError

        try:
            return func(*args, **kwargs)
        except WaterflowAPIError as exc:
            _api_error(exc)
        except WaterflowSDKError as exc:
            say(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def client_options(func: F) -> F:
    """What every command that talks to a server has: ``--server``, ``--output``, friendly errors."""
    return server_option(output_option(friendly_errors(func)))


def _api_error(
    exc: Any, *, source: str | None = None, text: str | None = None, given: dict[str, str] | None = None
) -> NoReturn:
    """The server's refusal, once: each placed problem (with its line and a caret when the text is
    known, or the ``-i`` that gave a bad input), else its message. Exit 2 when only inputs were wrong."""
    from .diagnostics import all_inputs, problem_lines

    if not exc.errors:
        say(f"error: {exc.message} (HTTP {exc.status})", err=True)
        sys.exit(EXIT_FAILED)
    for item in exc.errors:
        say("\n".join(problem_lines(item, source=source, text=text, given=given)), err=True)
    sys.exit(EXIT_USAGE if all_inputs(exc.errors) else EXIT_FAILED)


def _emit_model(model: Any, output: str) -> None:
    emit(model.model_dump(mode="json"), output)


def _client(server: str) -> Any:
    from .client import Client

    return Client(server, token=userconfig.token())


def _parse_inputs(pairs: Sequence[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="'-i' / '--input'")
        inputs[key.strip()] = value
    return inputs


# -- commands ---------------------------------------------------------------------------------


@click.group(cls=WaterflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="waterflow-sdk", prog_name="waterflow")
def cli() -> None:
    """Waterflow: GitHub-Actions-shaped workflows, run durably on Temporal.

    Start a local stack with `waterflow dev`, then `waterflow submit examples/hello.yaml --wait`.
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--server",
    envvar="WATERFLOW_SERVER",
    default=None,
    help="Check against this server's live catalog (its nodes and its agents') instead of the nodes "
    "installed here [env WATERFLOW_SERVER].",
)
@click.option("--local", is_flag=True, help="Check against the nodes installed here, even if WATERFLOW_SERVER is set.")
@output_option
@friendly_errors
def validate(files: tuple[Path, ...], server: str | None, local: bool, output: str) -> None:
    """Check workflow files; print `file:line:col: path: message` per problem, then the line with a caret.

    Each step's `with:` is checked against its node's input schema: by default against the nodes
    installed in this environment, with --server against a server's live catalog. Exits 1 if any
    file has a problem.
    """
    from .validation import FileResult, check_here, check_on_server

    results: list[FileResult] = []
    if server and not local:
        with _client(server) as client:
            results = [check_on_server(path, client) for path in files]
        note = "the server does not have {uses} installed: the agent that runs the step checks its with:"
    else:
        from .local_nodes import LocalNodes

        nodes = LocalNodes()
        for problem in nodes.errors:
            say(f"warning: {problem}", err=True)
        results = [check_here(path, nodes) for path in files]
        note = (
            "{uses} is not installed here, so its with: was not checked "
            "(--server URL checks it against a server's catalog)"
        )
    if output in STRUCTURED:
        emit([result.as_json() for result in results], output)
    else:
        from .diagnostics import problem_lines

        for result in results:
            for item in result.errors:
                say("\n".join(problem_lines(item, source=result.file, text=result.text)))
            if not result.errors:
                say(f"{result.file}: ok")
            for uses in result.unchecked:
                say(f"{result.file}: note: " + note.format(uses=uses))
    if any(result.errors for result in results):
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option(
    "-o", "--output", type=click.Choice(["json", "yaml"]), default="json", show_default=True, help="The format."
)
def schema(output: str) -> None:
    """Print the JSON Schema of the workflow DSL (for editors)."""
    try:
        from waterflow_core.dsl.schema import workflow_json_schema

        document = workflow_json_schema()
    except ImportError:
        from waterflow_core.dsl import Workflow

        document = Workflow.model_json_schema(by_alias=True)
    emit(document, output)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input value (repeatable).")
@click.option(
    "--id",
    "run_id",
    help="Run id; also an idempotency key (a finished run with this id is returned, not rerun).",
)
@click.option(
    "--limit",
    metavar="PATTERNS",
    help="Run each-server jobs only on these servers: comma-separated names, globs and group:NAME "
    "(e.g. 'web-1,web-[2-3],group:db').",
)
@click.option(
    "--check",
    "check_run",
    is_flag=True,
    help="A check run: steps with check: run it instead of themselves, the others are skipped, "
    "nothing is compensated.",
)
@click.option("--wait", is_flag=True, help="Follow the run to its end; exit 0 only if it succeeded.")
@click.option("--watch", is_flag=True, help=WATCH_HELP)
@click.option(
    "--timeout", type=float, default=None, help="With --wait or --watch: give up waiting after this many seconds."
)
@click.option("--poll", type=float, default=1.0, show_default=True, help="With --wait: seconds between status checks.")
@client_options
def submit(
    file: Path,
    inputs: tuple[str, ...],
    run_id: str | None,
    limit: str | None,
    check_run: bool,
    wait: bool,
    watch: bool,
    timeout: float | None,
    poll: float,
    server: str,
    output: str,
) -> None:
    """Submit FILE as a new run and print its id.

    A workflow the server refuses is shown like a compiler error (file:line:col, the line, a
    caret); a refused input names the -i that gave it (exit status 2).
    """
    from .errors import WaterflowAPIError

    _check_watch(watch, output)
    values = _parse_inputs(inputs)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    with _client(server) as client:
        try:
            ref = client.submit(text, inputs=values, id=run_id, limit=limit, check=check_run)
        except WaterflowAPIError as exc:
            _api_error(exc, source=str(file), text=text, given=values)
        _report_started(client, ref, wait=wait, watch=watch, timeout=timeout, poll=poll, output=output)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input value (repeatable).")
@click.option(
    "--local",
    is_flag=True,
    help="Plan here, without a server: no live servers, each-server groups are resolved at run time.",
)
@client_options
def plan(file: Path, inputs: tuple[str, ...], local: bool, server: str, output: str) -> None:
    """Show what a run of FILE would do, without running anything: jobs in order, which live servers
    each runs on in which batches, and each step's with: rendered (a value the run renders itself is
    shown as written, marked "(at run time)"; secrets show as <secret NAME>).
    """
    from waterflow_core.errors import WorkflowValidationError

    from .errors import WaterflowAPIError
    from .plan_view import local_plan, plan_lines

    values = _parse_inputs(inputs)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    if local:
        from waterflow_core.dsl.loader import load_workflow

        try:
            planned = local_plan(load_workflow(text, source=str(file)), values)
        except WorkflowValidationError as exc:
            _api_error(exc, source=str(file), text=text, given=values)
    else:
        with _client(server) as client:
            try:
                planned = client.plan(text, inputs=values)
            except WaterflowAPIError as exc:
                _api_error(exc, source=str(file), text=text, given=values)
    if output in STRUCTURED:
        emit(planned.model_dump(mode="json", by_alias=True), output)
    else:
        for line in plan_lines(planned):
            say(line)


def _report_started(
    client: Any, ref: Any, *, wait: bool, watch: bool, timeout: float | None, poll: float, output: str
) -> None:
    """Print a started run's id; with ``wait``/``watch`` follow it to its end and exit by its outcome."""
    if not (wait or watch):
        if output in STRUCTURED:
            _emit_model(ref, output)
        else:
            say(ref.id)
            if not ref.created:
                say(f"(run {ref.id} already exists; nothing new was started)", err=True)
        return
    if output not in STRUCTURED:
        say(ref.id)
    if watch:
        run = _watch(client, ref.id, timeout)
    else:
        run = _follow(client, ref.id, timeout=timeout, poll=poll, quiet=output in STRUCTURED)
    if output in STRUCTURED:
        _emit_model(run, output)
    else:
        say(_final(run))
    sys.exit(0 if run.succeeded else EXIT_FAILED)


def _check_watch(watch: bool, output: str) -> None:
    if watch and output in STRUCTURED:
        raise click.UsageError(f"--watch draws the run for a person; use --wait with --output {output}")


def _watch(client: Any, run_id: str, timeout: float | None) -> Any:
    from .live import watch

    return watch(client, run_id, timeout=timeout, echo=click.echo)


def _final(run: Any) -> str:
    from .render import final_line

    return final_line(run)


def _follow(client: Any, run_id: str, *, timeout: float | None, poll: float, quiet: bool) -> Any:
    """Poll the run until it ends, printing each step as it starts and finishes."""
    from .errors import WaterflowSDKError
    from .render import ProgressPrinter

    printer = ProgressPrinter()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            run = client.get(run_id)
            if not quiet:
                for line in printer.updates(run):
                    say(line)
            if run.done:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise WaterflowSDKError(f"run {run_id} still {run.status} after {timeout:g}s (it goes on)")
            time.sleep(poll)
    except KeyboardInterrupt:
        say(f"\nstopped waiting; run {run_id} goes on (`waterflow cancel {run_id}` stops it)", err=True)
        sys.exit(EXIT_INTERRUPTED)


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option("--logs", "with_logs", is_flag=True, help="Show each step's last log lines.")
@click.option("--watch", is_flag=True, help=WATCH_HELP)
@client_options
def status(run_id: str, with_logs: bool, watch: bool, server: str, output: str) -> None:
    """Show a run's status and its job/step tree with outputs.

    Running steps show their agent and attempt; a waiting approval gate what it waits for and how
    to answer it. Exits 0 whatever the run's state (the request succeeded).
    """
    from .render import run_lines

    _check_watch(watch, output)
    with _client(server) as client:
        if watch:
            run = _watch(client, run_id, None)
            say(_final(run))
            sys.exit(0 if run.succeeded else EXIT_FAILED)
        run = client.get(run_id)
    if output in STRUCTURED:
        _emit_model(run, output)
        return
    say("\n".join(run_lines(run, with_logs=with_logs)))


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Stream new lines until the run finishes.")
@client_options
def logs(run_id: str, follow: bool, server: str, output: str) -> None:
    """Print a run's step events and log lines.

    Control characters in the lines are shown as \\xNN (text); --output json prints one exact JSON
    object per line, yaml one document per entry.
    """
    try:
        with _client(server) as client:
            for entry in client.log_entries(run_id, follow=follow):
                if output in STRUCTURED:
                    emit_stream_item(entry.model_dump(mode="json"), output)
                else:
                    say(str(entry))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


@cli.command()
@click.argument("run_id", metavar="ID")
@client_options
def snapshot(run_id: str, server: str, output: str) -> None:
    """Show what run ID was started with: its workflow as submitted and its inputs."""
    with _client(server) as client:
        started = client.snapshot(run_id)
    if output in STRUCTURED:
        _emit_model(started, output)
        return
    say(f"# run {started.id} ({started.name}): the workflow as submitted")
    for line in (started.source or "(no workflow text was kept)").rstrip("\n").splitlines():
        say(line)
    say("# inputs")
    for key, value in started.inputs.items():
        say(f"{key} = {json.dumps(value, ensure_ascii=False)}")


@cli.command()
@click.argument("run_id", metavar="ID")
@client_options
def cancel(run_id: str, server: str, output: str) -> None:
    """Cancel a running run (completed steps are compensated)."""
    with _client(server) as client:
        result = client.cancel(run_id)
    if output in STRUCTURED:
        _emit_model(result, output)
    else:
        say(f"cancellation requested for {result.id}")


@cli.command()
@click.argument("run_id", metavar="ID")
@click.argument("name", metavar="NAME")
@click.option(
    "--data",
    "data_text",
    metavar="JSON",
    help="The answer's fields as a JSON object, or @FILE to read it from a file ('-' for stdin).",
)
@click.option("--reject", is_flag=True, help="Reject instead of approve (the gate's step fails).")
@client_options
def signal(run_id: str, name: str, data_text: str | None, reject: bool, server: str, output: str) -> None:
    """Answer the approval gates (flow/approval) of run ID waiting for signal NAME."""
    data = _signal_data(data_text)
    with _client(server) as client:
        result = client.signal(run_id, name, data, decision="reject" if reject else "approve")
    if output in STRUCTURED:
        _emit_model(result, output)
        return
    decision = "rejected" if reject else "approved"
    who = f" as {result.by}" if result.by else ""
    say(f"{decision} {', '.join(result.steps)} of {result.id} (signal {result.signal}){who}")


def _signal_data(text: str | None) -> dict[str, Any]:
    """``--data``: a JSON object, inline or ``@file``."""
    if text is None:
        return {}
    where = "--data"
    if text.startswith("@"):
        where = text[1:] or "-"
        try:
            text = sys.stdin.read() if where == "-" else Path(where).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {where}: {exc}", param_hint="'--data'") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{where} is not valid JSON: {exc}", param_hint="'--data'") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f'{where} must be a JSON object, such as {{"ticket": "T-1"}}', param_hint="'--data'")
    return value


@cli.command("list")
@click.option("--status", "status_filter", help="Comma-separated: running, succeeded, failed, cancelled, timed_out.")
@click.option("--name", help="Only runs of the workflow with this name.")
@click.option("--search", help="Only runs whose workflow name or run id contains this text (ignoring case).")
@click.option(
    "--since",
    type=Moment(),
    help="Only runs started at or after this time (2026-11-30, 2026-11-30T08:00:00Z) or this long ago (2h, 7d).",
)
@click.option("--until", type=Moment(), help="Only runs started before this time (same forms as --since).")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="How many runs.")
@client_options
def list_runs(
    status_filter: str | None,
    name: str | None,
    search: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    server: str,
    output: str,
) -> None:
    """List recent runs, newest first (text: id, status, name and start time, tab-separated)."""
    runs: list[Any] = []
    token: str | None = None
    with _client(server) as client:
        while len(runs) < limit:
            page = client.list_runs(
                status_filter, name, limit - len(runs), token, since=since, until=until, search=search
            )
            runs += page.runs
            token = page.next_page_token
            if not token:
                break
    if output in STRUCTURED:
        emit([run.model_dump(mode="json") for run in runs], output)
        return
    rows = [
        (run.id, run.status + " (check)" * run.check, run.name, _when(run.started_at), _when(run.finished_at))
        for run in runs
    ]
    if output == "table":
        from .node_tables import table

        say("\n".join(table(("ID", "STATUS", "NAME", "STARTED", "FINISHED"), rows)))
        return
    for row in rows:
        say("\t".join(row[:4]))


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


# -- agents -----------------------------------------------------------------------------------


@cli.group()
def agents() -> None:
    """The agents registered with the server: their groups, nodes and liveness."""


@agents.command("list")
@click.option("--all", "include_stale", is_flag=True, help="Also agents that stopped heartbeating.")
@click.option("--group", help="Only agents serving this group.")
@client_options
def agents_list(include_stale: bool, group: str | None, server: str, output: str) -> None:
    """Live agents (with --all, stale ones too): name, state, groups, node count, last heartbeat."""
    with _client(server) as client:
        found = [agent for agent in client.agents(include_stale) if group is None or group in agent.groups]
    if output in STRUCTURED:
        emit([agent.model_dump(mode="json") for agent in found], output)
        return
    rows = [
        (
            agent.name,
            "alive" if agent.alive else "stale",
            ",".join(agent.groups) or "-",
            str(len(agent.nodes)),
            _when(agent.last_seen),
        )
        for agent in found
    ]
    if output == "table":
        from .node_tables import table

        say("\n".join(table(("NAME", "STATE", "GROUPS", "NODES", "LAST SEEN"), rows)))
        return
    if not rows:
        say("no agents" + ("" if include_stale else " alive (--all shows stale ones)"), err=True)
    for row in rows:
        say("\t".join(row))


@agents.command("show")
@click.argument("name", metavar="NAME")
@client_options
def agents_show(name: str, server: str, output: str) -> None:
    """One agent (alive or stale): groups, liveness, start and last heartbeat, nodes, facts."""
    from waterflow_core.dsl.pydantic_errors import did_you_mean

    from .errors import WaterflowSDKError
    from .render import format_value

    with _client(server) as client:
        found = client.agents(include_stale=True)
    agent = next((agent for agent in found if agent.name == name), None)
    if agent is None:
        hint = did_you_mean(name, {agent.name for agent in found})
        raise WaterflowSDKError(f"no agent named '{name}'{hint}; `waterflow agents list --all` shows them all")
    if output in STRUCTURED:
        _emit_model(agent, output)
        return
    lines = [
        f"agent {agent.name}  {'alive' if agent.alive else 'stale'}",
        f"  groups    {', '.join(agent.groups) or '-'}",
        f"  started   {_when(agent.started_at)}",
        f"  last seen {_when(agent.last_seen)}",
        f"  nodes     {', '.join(agent.nodes) or '-'}",
    ]
    lines += [f"  {key} = {format_value(value)}" for key, value in sorted(agent.facts.items())]
    say("\n".join(lines))


# -- nodes ------------------------------------------------------------------------------------


@cli.group()
def nodes() -> None:
    """The node catalog: which node types exist, where they run, what they take."""


def _local_option(func: F) -> F:
    return click.option("--local", is_flag=True, help="The nodes installed in this environment (no server needed).")(
        func
    )


def _catalog(server: str, local: bool) -> list[Any]:
    if local:
        from .local_nodes import LocalNodes

        installed = LocalNodes()
        for problem in installed.errors:
            say(f"warning: {problem}", err=True)
        return installed.catalog()
    with _client(server) as client:
        return list(client.nodes())


@nodes.command("list")
@_local_option
@client_options
def nodes_list(local: bool, server: str, output: str) -> None:
    """Every node type: version, the agents and groups that run it, what it does."""
    from .node_tables import list_lines

    found = _catalog(server, local)
    if output in STRUCTURED:
        emit([node.model_dump(mode="json") for node in found], output)
        return
    say("\n".join(list_lines(found, local=local)))


@nodes.command("show")
@click.argument("node_type", metavar="TYPE")
@_local_option
@client_options
def nodes_show(node_type: str, local: bool, server: str, output: str) -> None:
    """One node type (TYPE or TYPE@MAJOR): where it runs, its inputs as a table, its outputs."""
    from waterflow_core.dsl.pydantic_errors import did_you_mean

    from .errors import WaterflowSDKError
    from .node_tables import show_lines

    found = _catalog(server, local)
    wanted, _, major = node_type.strip().partition("@")
    same = [node for node in found if node.type == wanted]
    chosen = [node for node in same if not major or node.version.split(".", 1)[0] == major]
    if not chosen:
        if same:
            have = ", ".join(f"@{node.version.split('.', 1)[0]}" for node in same)
            raise WaterflowSDKError(f"node type {wanted} has no major version {major} (there are: {have})")
        hint = did_you_mean(wanted, {node.type for node in found})
        where = "installed here" if local else "known to the server"
        raise WaterflowSDKError(f"no node type '{wanted}' is {where}{hint}; `waterflow nodes list` shows them all")
    node = chosen[-1]  # the catalog is sorted by major: the last is the highest
    if output in STRUCTURED:
        _emit_model(node, output)
        return
    others = [f"@{n.version.split('.', 1)[0]}" for n in same if n is not node] if not major else []
    say("\n".join(show_lines(node, local=local, other_majors=others)))


# -- shell completion -------------------------------------------------------------------------


# -- schedules --------------------------------------------------------------------------------

from .cli_schedule import schedule  # noqa: E402 - it builds on the helpers above

cli.add_command(schedule)

# -- reruns -----------------------------------------------------------------------------------

from .cli_rerun import rerun  # noqa: E402 - it builds on the helpers above

cli.add_command(rerun)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (commands, options, choices, files).

    \b
    bash: eval "$(waterflow completion bash)"        (in ~/.bashrc)
    zsh:  eval "$(waterflow completion zsh)"         (in ~/.zshrc)
    fish: waterflow completion fish > ~/.config/fish/completions/waterflow.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:  # click knows these three; the choice above keeps it so
        raise click.UsageError(f"no completion for {shell}")
    click.echo(completer(cli, {}, "waterflow", COMPLETE_VAR).source())


COMPLETE_VAR = "_WATERFLOW_COMPLETE"
"""The variable the completion scripts set when they ask ``waterflow`` for completions."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: :data:`cli` with the documented exit statuses.

    click's own handling would turn Ctrl-C into "Aborted!" and status 1; here it is status 130
    (interrupted), usage errors are 2, and an unexpected error is one line and status 1.
    """
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="waterflow",
            complete_var=COMPLETE_VAR,
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if os.environ.get("WATERFLOW_DEBUG"):
            raise
        say(f"error: {type(exc).__name__}: {exc} (set WATERFLOW_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # python -m waterflow_sdk.cli
    main()
