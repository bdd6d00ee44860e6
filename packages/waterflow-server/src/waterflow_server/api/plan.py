"""``POST /v1/plan``: what a run would do, where and in which batches, without starting it (ADR 0038).

The body is the one ``POST /v1/validate`` takes (workflow text, inputs). The workflow is
validated as a submission is; the planner (:mod:`waterflow_core.plan`) asks the configured
ServerGroupProvider for the servers of each group, as ``each-server`` would, and never a secret
provider. Like every ``POST`` it needs an operator token: the answer lists the live servers,
which ``GET /v1/agents`` shows to read tokens too, but read tokens stay ``GET``-only.

Planning evaluates expressions for every instance of every job: it runs in the validation pool
(a thread, bounded in number and time, ADR 0023), not on the event loop; the provider is still
asked on the event loop, where the Temporal client lives.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from blacksheep import Application, Request, Response
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo

from waterflow_core.interpreter.fanout import ListedServer
from waterflow_core.interpreter.servers import listed_servers
from waterflow_core.plan import Plan, plan_workflow
from waterflow_core.providers import ServerGroupProvider

from ..providers_config import build_server_groups
from .bodies import read_submission
from .openapi import WaterflowOpenAPI, error_responses
from .problems import json_response

if TYPE_CHECKING:
    from .app import AppState

PLAN_PATH = "/v1/plan"


def register_plan_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add ``POST /v1/plan`` to ``app``."""
    providers: list[ServerGroupProvider] = []

    async def servers(group: str) -> list[ListedServer]:
        if not providers:  # built on first use: the Temporal client exists once the app started
            providers.append(build_server_groups(state.settings.server_groups, state.client))
        return await listed_servers(providers[0], state.client, group)

    @docs(
        summary="Plan a run (dry run)",
        tags=["runs"],
        responses={
            200: ResponseInfo("What the run would do; nothing was started.", content=[ContentInfo(type=Plan)]),
            **error_responses(400, 413, 415, 422, 503),
        },
    )
    async def plan(request: Request) -> Response:
        """Which jobs and steps a run of this workflow with these inputs would run on which live servers,
        in which batches, with every expression that can be evaluated now evaluated and secrets shown as
        `<secret NAME>`. Starts nothing."""
        submission = await read_submission(request, state.settings.max_body_bytes)
        workflow = await state.runs.validate(submission.workflow)
        inputs = state.runs.check_inputs(workflow, submission.inputs)
        loop = asyncio.get_running_loop()

        async def servers_from_pool(group: str) -> list[ListedServer]:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(servers(group), loop))

        def work() -> Plan:
            return asyncio.run(plan_workflow(workflow, inputs, servers_from_pool))

        planned = await state.runs.validation.run(work)
        return json_response(200, planned.model_dump(mode="json", by_alias=True))

    app.router.add_post(PLAN_PATH, plan)
