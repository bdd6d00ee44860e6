"""The plan of a run (``waterflow plan``, ``POST /v1/plan``): what would run where, running nothing.

Jobs come in DAG order. Every ``$<< >>`` text that reads only what is known before a run starts
(``inputs``, ``vars``, ``workflow.name``, a job's ``matrix`` and the ``env`` values rendered from
those) is evaluated with the interpreter's own :class:`~.interpreter.conditions.Evaluator`; an
expression that reads anything else (``steps``, ``needs``, ``server``, ``workflow.id``, a status
function) is kept as written, and the place of its text listed in ``at_run_time``. ``secrets.NAME`` shows as
``<secret NAME>``: the planner has no secret provider, so no value can leak (ADR 0038).

``each-server`` jobs list the servers the ServerGroupProvider answers, each with its ``live``
flag, split into the batches :func:`~.interpreter.batches.batch_sizes` computes, as the
interpreter does. Without a provider (a local plan) the servers are "resolved at run time".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .dsl.inputs import resolve_inputs
from .dsl.models import Job, Step, Workflow
from .errors import ExpressionError
from .expressions import CLOSE, OPEN, CompiledExpression, map_templates
from .expressions.coercion import to_string, truthy
from .interpreter.batches import batch_sizes
from .interpreter.conditions import EvaluationError, Evaluator
from .interpreter.contexts import merged_env
from .interpreter.dag import step_ids
from .interpreter.fanout import FanoutError, ListedServer, expand_matrix, label_instances

Decision = Literal["runs", "skipped", "at run time"]
"""Whether a job or step runs: known now, or decided by the run (its ``if:`` reads run state)."""

ServerLister = Callable[[str], Awaitable[list[ListedServer]]]
"""A group's servers with their ``live`` flag (the ServerGroupProvider, as ``each-server`` asks it)."""

_PLAIN_SECRET = re.compile(r"secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\])")
_UNKNOWN_WORKFLOW_KEYS = frozenset({"id", "run_id"})
"""``workflow.*`` keys the run is given when it starts; the name is known now."""


class PlannedStep(BaseModel):
    """One step as it would run on one instance."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    uses: str
    decision: Decision
    reason: str | None = None
    """Why it is skipped, or what the run decides."""
    with_: dict[str, Any] = Field(default_factory=dict, validation_alias="with", serialization_alias="with")
    env: dict[str, Any] = Field(default_factory=dict)
    """The step's environment (workflow → job → step), rendered where possible."""
    run_as: str | None = None
    at_run_time: list[str] = Field(default_factory=list)
    """Places (``with.command``, ``env.TOKEN``, ``name``) kept as written: rendered when the step runs."""


class PlannedInstance(BaseModel):
    """One instance of a job: a server and/or a matrix combination (one per job without fan-out)."""

    label: str | None = None
    server: str | None = None
    live: bool = True
    """False: a listed server without a live agent; the run fails this instance at once."""
    matrix: dict[str, Any] = Field(default_factory=dict)
    steps: list[PlannedStep] = Field(default_factory=list)


class PlannedBatch(BaseModel):
    """Instances started together (``strategy.batch``; a job without it is one batch)."""

    number: int
    instances: list[PlannedInstance]


class PlannedJob(BaseModel):
    """One job: where it runs, whether it runs, and its instances in batches."""

    id: str
    name: str
    needs: list[str] = Field(default_factory=list)
    decision: Decision
    reason: str | None = None
    runs_on: str
    """The group, rendered (or as written when it reads run state)."""
    each_server: bool = False
    servers: list[str] | None = None
    """Live agents of the group (a job without ``each-server``: any one of them runs each step);
    None when unknown (a local plan, or a group decided at run time)."""
    servers_note: str | None = None
    """Why the servers are not listed (``servers of group G: resolved at run time``)."""
    max_parallel: int | None = None
    batch: list[int | str] | None = None
    """``strategy.batch`` as written; :attr:`batches` holds the instances of each."""
    max_fail_percentage: float | None = None
    batches: list[PlannedBatch] = Field(default_factory=list)
    error: str | None = None
    """Why the job would fail before running a step (e.g. a matrix that does not expand)."""


class Plan(BaseModel):
    """What a run of a workflow with given inputs would do; nothing was started."""

    name: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    live_servers: bool
    """Whether servers were asked from the server's ServerGroupProvider (false: a local plan)."""
    jobs: list[PlannedJob] = Field(default_factory=list)


class _Known:
    """The contexts known before the run, and the keys in them that only the run knows."""

    def __init__(self, values: Mapping[str, Any], pending: Mapping[str, set[str]]) -> None:
        self.values = dict(values)
        self.pending = {context: set(keys) for context, keys in pending.items()}

    def with_(self, context: str, value: Any, pending: set[str] | None = None) -> _Known:
        known = _Known({**self.values, context: value}, self.pending)
        known.pending[context] = set(pending or ())
        return known

    def knows(self, context: str, path: tuple[str | int, ...]) -> bool:
        if context not in self.values:
            return False
        head = path[0] if path else None
        pending = self.pending.get(context, set())
        if head is None:
            return not pending
        return not isinstance(head, str) or head.lower() not in pending


class Planner:
    """Plans one workflow with its inputs; ``servers`` lists a group's servers (None: local)."""

    def __init__(self, workflow: Workflow, inputs: Mapping[str, Any], servers: ServerLister | None = None) -> None:
        self.workflow = workflow
        self.inputs = resolve_inputs(workflow, inputs)  # WorkflowValidationError for bad inputs
        self.servers = servers
        self._ev = Evaluator()
        self._listed: dict[str, list[ListedServer]] = {}

    async def plan(self) -> Plan:
        """The plan (see the module description)."""
        wf = self.workflow
        base = _Known({"inputs": self.inputs, "workflow": {"name": wf.name}}, {"workflow": set(_UNKNOWN_WORKFLOW_KEYS)})
        variables, pending_vars = self._vars(base)
        base = base.with_("vars", variables, pending_vars)
        env, pending_env, _ = self._env({}, set(), wf.env, base.with_("env", {}))
        decisions: dict[str, Decision] = {}
        jobs = []
        for job_id in dag_order(wf):
            job = wf.jobs[job_id]
            planned = await self._job(job_id, job, base, env, pending_env, decisions)
            decisions[job_id] = planned.decision
            jobs.append(planned)
        return Plan(name=wf.name, inputs=self.inputs, vars=variables, live_servers=self.servers is not None, jobs=jobs)

    # -- expressions ------------------------------------------------------------------------

    def _render_text(self, text: str, known: _Known) -> tuple[Any, bool]:
        """``(value, True)`` when ``text`` reads only known values (secrets as references); else
        ``(text, False)`` with the expressions that are known evaluated in it (a text that is one
        expression stays as written)."""
        if OPEN not in text:
            return text, True
        try:
            template = self._ev.template(text)
        except ExpressionError:
            return text, False  # the run reports it, at the place it happens
        secrets: dict[str, str] = {}
        known_ones = [self._knows(compiled, known, secrets) for _, compiled in template.expressions]
        contexts = {**known.values, "secrets": secrets}
        if all(known_ones):
            try:
                return self._ev.render(text, contexts, where="plan"), True
            except EvaluationError:
                return text, False
        if template.is_single_expression:
            return text, False
        out: list[str] = []
        index = 0
        for (offset, compiled), ok in zip(template.expressions, known_ones, strict=True):
            begin = offset - 1  # offsets are 1-based; the source is the text between $<< and >>
            start, close = begin - len(OPEN), begin + len(compiled.source) + len(CLOSE)
            out.append(text[index:start])
            piece = text[start:close]
            if ok:
                try:
                    piece = to_string(compiled.evaluate(contexts))
                except ExpressionError:
                    pass  # kept as written: the run reports it
            out.append(piece)
            index = close
        out.append(text[index:])
        return "".join(out), False

    @staticmethod
    def _knows(compiled: CompiledExpression, known: _Known, secrets: dict[str, str]) -> bool:
        """Whether ``compiled`` reads only known values; plain secret references go into ``secrets``."""
        for ref in compiled.references:
            if ref.context == "secrets":
                plain = _PLAIN_SECRET.fullmatch(compiled.source.strip())
                if plain is None:  # a computed use of a secret: only the agent may compute it
                    return False
                secret = plain.group(1) or plain.group(2)
                secrets[secret] = f"<secret {secret}>"
            elif not known.knows(ref.context, ref.path):
                return False
        return True

    def _render(self, value: Any, known: _Known, place: str, late: list[str]) -> Any:
        def one(path: tuple[str | int, ...], text: str) -> Any:
            rendered, done = self._render_text(text, known)
            if not done:
                late.append(place + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path))
            return rendered

        return map_templates(value, one)

    def _condition(self, text: str | None, known: _Known) -> tuple[Decision, str | None]:
        if text is None or not text.strip():
            return "runs", None
        if self._ev.uses_status(text):
            return "at run time", f"if: {text.strip()} (calls a status function)"
        value, done = self._render_text(text if OPEN in text else f"$<< {text} >>", known)
        if not done:
            return "at run time", f"if: {text.strip()}"
        return ("runs", None) if truthy(value) else ("skipped", f"if: {text.strip()} is false")

    def _vars(self, base: _Known) -> tuple[dict[str, Any], set[str]]:
        rendered: dict[str, Any] = {}
        pending: set[str] = set()
        for key, value in self.workflow.vars.items():
            late: list[str] = []
            rendered[key] = self._render(value, base.with_("vars", rendered, pending), f"vars.{key}", late)
            if late:
                pending.add(key.lower())
        return rendered, pending

    def _env(
        self, env: dict[str, Any], pending: set[str], templates: Mapping[str, str], known: _Known
    ) -> tuple[dict[str, Any], set[str], list[str]]:
        """``env`` with ``templates`` rendered over it (known values, and the keys left for the run)."""
        env, pending, late = dict(env), set(pending), []
        context = known.with_("env", dict(env), pending)
        for key, text in templates.items():
            value, done = self._render_text(text, context) if OPEN in text else (text, True)
            env[key] = value
            if done:
                pending.discard(key.lower())
            else:
                pending.add(key.lower())
                late.append(f"env.{key}")
        return env, pending, late

    # -- jobs -------------------------------------------------------------------------------

    async def _job(
        self,
        job_id: str,
        job: Job,
        base: _Known,
        env: dict[str, Any],
        pending_env: set[str],
        decisions: Mapping[str, Decision],
    ) -> PlannedJob:
        strategy = job.strategy
        planned = PlannedJob(
            id=job_id,
            name=job.name or job_id,
            needs=list(job.needs),
            decision="runs",
            runs_on=job.runs_on,
            each_server=bool(strategy and strategy.each_server),
            max_parallel=strategy.max_parallel if strategy else None,
            batch=list(strategy.batch) if strategy and strategy.batch else None,
            max_fail_percentage=strategy.max_fail_percentage if strategy else None,
        )
        planned.decision, planned.reason = self._job_decision(job, base, decisions)
        if planned.decision == "skipped":
            return planned
        combos: list[dict[str, Any]] | None = [{}]
        if strategy is not None and strategy.matrix is not None:
            matrix, done = self._render_text_value(strategy.matrix, base)
            try:
                combos = expand_matrix(matrix) if done else None
            except FanoutError as exc:
                planned.error = f"strategy.matrix: {exc}"
                return planned
        if combos is None:  # the matrix reads run state: one instance shows the steps
            planned.servers_note = "matrix: resolved at run time"
            instance = self._instance(job, None, None, base, env, pending_env)
            planned.batches = [PlannedBatch(number=1, instances=[instance])]
            return planned
        pairs: list[tuple[str | None, dict[str, Any]]] = []
        live: list[bool] = []
        for combo in combos:
            group, done = self._render_text(job.runs_on, base.with_("matrix", combo))
            group = group if done and isinstance(group, str) else job.runs_on
            planned.runs_on = group
            try:
                listed = await self._group(group) if done else None
            except Exception as exc:  # noqa: BLE001 - a provider plugin failing is the job's error, as in a run
                planned.error = f"cannot list the servers of group '{group}': {exc}"
                return planned
            if planned.each_server:
                if listed is None:
                    planned.servers_note = f"servers of group {group}: resolved at run time"
                    pairs.append((None, combo))
                    live.append(True)
                    continue
                if not listed:
                    planned.error = f"each-server: group '{group}' lists no server"
                for server in listed:
                    pairs.append((server.name, combo))
                    live.append(server.live)
            else:
                if listed is not None:
                    planned.servers = [s.name for s in listed if s.live]
                pairs.append((None, combo))
                live.append(True)
        if not pairs:
            return planned
        instances = []
        try:
            labelled = label_instances(pairs) if len(pairs) > 1 or pairs[0] != (None, {}) else None
        except FanoutError as exc:
            planned.error = str(exc)
            return planned
        for index, (name, combo) in enumerate(pairs):
            instance = self._instance(job, name, combo, base, env, pending_env)
            instance.label = labelled[index].label if labelled else None
            instance.live = live[index]
            instances.append(instance)
        entries = strategy.batch if strategy is not None else None
        start = 0
        for number, size in enumerate(batch_sizes(entries, len(instances)), start=1):
            planned.batches.append(PlannedBatch(number=number, instances=instances[start : start + size]))
            start += size
        return planned

    def _render_text_value(self, value: Any, known: _Known) -> tuple[Any, bool]:
        late: list[str] = []
        rendered = self._render(value, known, "", late)
        return rendered, not late

    def _job_decision(self, job: Job, base: _Known, decisions: Mapping[str, Decision]) -> tuple[Decision, str | None]:
        own, reason = self._condition(job.if_, base)
        if own == "skipped":
            return own, reason
        uses_status = self._ev.uses_status(job.if_)
        skipped = [n for n in job.needs if decisions.get(n) == "skipped"]
        if skipped and not uses_status:
            return "skipped", f"needs {', '.join(skipped)}, which is skipped"
        undecided = [n for n in job.needs if decisions.get(n) == "at run time"]
        if own == "at run time":
            return own, reason
        if undecided:
            return "at run time", f"needs {', '.join(undecided)}, which the run decides"
        return "runs", None

    async def _group(self, group: str) -> list[ListedServer] | None:
        if self.servers is None:
            return None
        if group not in self._listed:
            self._listed[group] = sorted(await self.servers(group), key=lambda s: s.name)
        return self._listed[group]

    def _instance(
        self,
        job: Job,
        server: str | None,
        combo: dict[str, Any] | None,
        base: _Known,
        env: dict[str, Any],
        pending_env: set[str],
    ) -> PlannedInstance:
        known = base.with_("matrix", combo) if combo is not None else base
        job_env, job_pending, _ = self._env(env, pending_env, job.env, known)
        steps = list(self._steps(job, known, job_env, job_pending))
        return PlannedInstance(server=server, matrix=combo or {}, steps=steps)

    def _steps(self, job: Job, known: _Known, env: dict[str, Any], pending: set[str]) -> Iterator[PlannedStep]:
        for sid, step in zip(step_ids(job.steps), job.steps, strict=True):
            yield self._step(sid, step, known, env, pending, job)

    def _step(
        self, sid: str, step: Step, known: _Known, env: dict[str, Any], pending: set[str], job: Job
    ) -> PlannedStep:
        step_env, step_pending, _ = self._env(env, pending, step.env, known)
        context = known.with_("env", step_env, step_pending)
        decision, reason = self._condition(step.if_, context)
        late: list[str] = []
        name = step.name or (sid if step.id else step.uses)
        if step.name and OPEN in step.name:
            name, done = self._render_text(step.name, context)
            if not done:
                late.insert(0, "name")
        shown_env = {key: step_env[key] for key in merged_env(self.workflow.env, job.env, step.env)}
        late += [f"env.{key}" for key in shown_env if key.lower() in step_pending]
        with_ = self._render(step.with_, context, "with", late)
        return PlannedStep(
            id=sid,
            name=str(name),
            uses=step.uses,
            decision=decision,
            reason=reason,
            with_=with_,
            env=shown_env,
            run_as=step.run_as,
            at_run_time=late,
        )


def dag_order(workflow: Workflow) -> list[str]:
    """Job ids so that every job comes after its needs; otherwise in document order."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(workflow.jobs)
    while remaining:
        # The loader rejects cycles; the fallback keeps a bad input from looping forever.
        ready = [j for j in remaining if all(n in placed for n in workflow.jobs[j].needs)] or remaining[:1]
        for job_id in ready:
            order.append(job_id)
            placed.add(job_id)
        remaining = [j for j in remaining if j not in placed]
    return order


async def plan_workflow(workflow: Workflow, inputs: Mapping[str, Any], servers: ServerLister | None = None) -> Plan:
    """The :class:`Plan` of ``workflow`` with ``inputs``; ``servers`` lists a group's servers (None: local)."""
    return await Planner(workflow, inputs, servers).plan()
