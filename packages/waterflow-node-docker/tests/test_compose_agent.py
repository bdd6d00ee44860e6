"""docker/compose-up and docker/compose-down run by a real agent with the machine's real compose.

Only compose v1 exists on the test machines and in CI: these tests run it for real; v2's command
lines are checked in test_docker_units.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from waterflow_core.steptask import StepTask
from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

if TYPE_CHECKING:  # the fixtures' classes; conftest is not importable under --import-mode=importlib
    from conftest import ComposeProject

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(start_agent: StartAgent, task_queue: str, compose_project: ComposeProject) -> AgentProcess:
    """An agent whose only file root is the project's directory."""
    env = {"WATERFLOW_LOAD_PLUGINS": "docker", "WATERFLOW_FILE_ROOTS": str(compose_project.directory)}
    return start_agent(unique_name(), [task_queue], env=env)


async def _failure(
    step_harness: StepHarness, task: StepTask, queue: str, **options: object
) -> tuple[ActivityError, ApplicationError]:
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, queue, **options)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError), info.value
    assert isinstance(activity_error.cause, ApplicationError), activity_error
    return activity_error, activity_error.cause


def _names(project: str, service: str, *numbers: int) -> list[set[str]]:
    # Compose v1 names containers proj_web_1, v2 proj-web-1: accept either.
    return [{f"{project}_{service}_{n}", f"{project}-{service}-{n}"} for n in numbers]


async def test_up_waits_for_health_then_down_removes_everything(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(
        f"""
        services:
          web:
            image: {docker_test_image}
            network_mode: none
            # Healthy only once it has "warmed up": the wait must see it go from starting to healthy.
            command: [sh, -c, "sleep 2; touch /tmp/ready; exec sleep ${{NAP}}"]
            healthcheck: {{test: [CMD, test, -f, /tmp/ready], interval: 1s, retries: 30}}
            volumes: [data:/data]
          worker:
            image: {docker_test_image}
            network_mode: none
            command: [sleep, "3600"]
            depends_on: [web]
            scale: 2
          unused:
            image: waterflow-test/not-pulled:never
            network_mode: none
            profiles: [debug]
        volumes:
          data: {{}}
        """
    )
    up = make_step(
        "docker/compose-up",
        {
            "file": str(compose_project.file),
            "project": "$<< inputs.project >>",
            "services": ["worker"],
            "env": {"NAP": "$<< inputs.nap >>"},
            "pull": "never",
        },
        contexts={"inputs": {"project": compose_project.name, "nap": 3601}},
    )
    result = await step_harness.run(up, task_queue)
    out = result.outputs
    assert out["project"] == compose_project.name and out["files"] == [str(compose_project.file)]
    assert out["compose"] in ("docker-compose", "docker compose") and out["compose-version"][0].isdigit()
    assert sorted(out["services"]) == ["web", "worker"]  # the dependency came up with it
    [web] = out["services"]["web"]
    assert web["state"] == "running" and web["health"] == "healthy"
    assert web["name"] in _names(compose_project.name, "web", 1)[0]
    workers = out["services"]["worker"]
    assert [w["number"] for w in workers] == [1, 2] and all(w["health"] == "none" for w in workers)
    assert [c["id"] for c in out["containers"]] == [web["id"], *(w["id"] for w in workers)]
    assert any(f"using {out['compose']} {out['compose-version']}" in line for line in result.log_tail)
    assert "sleep 3601" in " ".join(compose_project.compose("top", "web").stdout.split())  # ${NAP} interpolated
    assert compose_project.volumes() == [f"{compose_project.name}_data"]

    down = make_step(
        "docker/compose-down",
        {"file": str(compose_project.file), "project": compose_project.name, "volumes": True, "timeout": "0"},
    )
    removed = (await step_harness.run(down, task_queue)).outputs
    assert sorted(removed["removed"]) == sorted([web["name"], *(w["name"] for w in workers)])
    assert compose_project.containers() == [] and compose_project.volumes() == []
    again = (await step_harness.run(down, task_queue)).outputs  # down is idempotent
    assert again["removed"] == []


async def test_wait_times_out_on_an_unhealthy_service(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(
        f"""
        services:
          web:
            image: {docker_test_image}
            network_mode: none
            command: [sh, -c, "echo listening on nothing; exec sleep 3600"]
            healthcheck: {{test: [CMD, sh, -c, "echo connection refused; exit 1"], interval: 1s, retries: 1}}
        """
    )
    task = make_step(
        "docker/compose-up",
        {"file": str(compose_project.file), "project": compose_project.name, "wait-timeout": "4s"},
    )
    activity_error, cause = await _failure(step_harness, task, task_queue, max_attempts=2)
    assert cause.type == "WaterflowStepFailed" and not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert f"project {compose_project.name} not ready after 4s" in cause.message
    assert "unhealthy, last check: connection refused" in cause.message
    assert "listening on nothing" in cause.message  # the container's own log, for diagnosis
    assert cause.details[1]["containers"][0]["health"] == "unhealthy"


async def test_a_container_that_exits_fails_the_wait_at_once(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(
        f"""
        services:
          migrate:
            image: {docker_test_image}
            network_mode: none
            command: [sh, -c, "echo no database; exit 3"]
        """
    )
    # A wait of an hour: only failing fast lets the step end within the harness's bound.
    task = make_step("docker/compose-up", {"file": str(compose_project.file), "wait-timeout": "1h"})
    _, cause = await _failure(step_harness, task, task_queue, heartbeat_timeout=10)
    assert "exited (exit code 3)" in cause.message
    assert "no database" in cause.message
    # Without `project` the name is the directory's, as compose would pick it.
    assert cause.details[1]["containers"][0]["service"] == "migrate"
    assert f"project {compose_project.name}: a container stopped" in cause.message


async def test_inputs_that_can_never_work_are_not_retried(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(
        f"""
        services:
          web: {{image: {docker_test_image}, network_mode: none, command: [sleep, "3600"]}}
          cache: {{image: "waterflow-test/absent:never", network_mode: none}}
        """
    )
    broken = compose_project.directory / "broken.yml"
    broken.write_text("services: [\n")
    file = str(compose_project.file)
    cases = [
        ({"file": file, "services": ["cache"], "pull": "never"}, "cache (waterflow-test/absent:never)"),
        ({"file": file, "services": ["db"]}, "no service 'db' in the compose file; its services: cache, web"),
        ({"file": str(broken)}, "rejected the compose file(s)"),
        ({"file": "/etc/shadow"}, "outside the allowed roots"),
        ({"file": f"{compose_project.directory}/../../../etc/passwd"}, "'..' is not allowed"),
        ({"file": "$<< inputs.value >>"}, "file '-h' refused"),  # `-h` is a path here, never a flag
        ({"file": file, "project": "$<< inputs.value >>"}, "with.project"),
        ({"file": file, "services": ["web", "$<< inputs.value >>"]}, "with.services[1]"),
        ({"file": file, "env": {"A=B": "x"}}, "without '=' or NUL"),
    ]
    for with_, expected in cases:
        task = make_step("docker/compose-up", with_, contexts={"inputs": {"value": "-h"}})
        activity_error, cause = await _failure(step_harness, task, task_queue, max_attempts=3)
        assert cause.type == "WaterflowBadInput" and cause.non_retryable, with_
        assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
        assert expected in cause.message, (with_, cause.message)
        assert "root:" not in cause.message  # compose never got to quote a file outside the roots
    assert compose_project.containers() == []


async def test_missing_compose_is_a_docker_error_that_is_not_retried(
    step_harness: StepHarness, start_agent: StartAgent, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(f"services: {{web: {{image: {docker_test_image}}}}}\n")
    env = {"PATH": "/nonexistent", "WATERFLOW_FILE_ROOTS": str(compose_project.directory)}
    agent = start_agent(unique_name(), [task_queue], env=env)
    for node in ("docker/compose-up", "docker/compose-down"):
        task = make_step(node, {"file": str(compose_project.file)})
        _, cause = await _failure(step_harness, task, task_queue, max_attempts=3)
        assert cause.type == "WaterflowDockerUnavailable" and cause.non_retryable
        assert f"nor `docker-compose` (v1) works on agent {agent.name}" in cause.message


async def test_cancelling_compose_up_stops_compose(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    # `db` never leaves "starting", so compose itself blocks on web's depends_on condition.
    compose_project.write(
        f"""
        services:
          db:
            image: {docker_test_image}
            network_mode: none
            command: [sleep, "3600"]
            healthcheck: {{test: [CMD, "true"], interval: 1h, start_period: 1h}}
          web:
            image: {docker_test_image}
            network_mode: none
            command: [sleep, "3600"]
            depends_on: {{db: {{condition: service_healthy}}}}
        """
    )
    task = make_step("docker/compose-up", {"file": str(compose_project.file), "project": compose_project.name})
    handle = await step_harness.start(task, task_queue, heartbeat_timeout=2)
    await eventually(compose_project.processes)  # compose is running, waiting for db
    await eventually(compose_project.containers)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await eventually(compose_project.processes, lambda running: running == [])
    # What was created stays, as after Ctrl-C of `docker compose up`: compose-down removes it.
    assert compose_project.containers()
