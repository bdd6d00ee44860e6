"""docker/exec run by a real agent process through a real Temporal, in real containers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError

from waterflow_core.steptask import StepTask
from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

if TYPE_CHECKING:  # the fixtures' classes; conftest is not importable under --import-mode=importlib
    from conftest import ComposeProject, Containers

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(start_agent: StartAgent, task_queue: str) -> AgentProcess:
    return start_agent(unique_name(), [task_queue], env={"WATERFLOW_LOAD_PLUGINS": "docker"})


async def _failure(
    step_harness: StepHarness, task: StepTask, queue: str, **options: object
) -> tuple[ActivityError, ApplicationError]:
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, queue, **options)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError), info.value
    assert isinstance(activity_error.cause, ApplicationError), activity_error
    return activity_error, activity_error.cause


async def test_exec_outputs_and_streams(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    task = make_step(
        "docker/exec",
        {
            "container": name,
            "command": ["sh", "-c", 'echo "out $GREETING"; echo oops >&2; pwd; id -un'],
            "env": {"GREETING": "hello"},
            "workdir": "/tmp",
            "user": "nobody",
        },
        env={"STEP_LEVEL": "from the step"},
    )
    result = await step_harness.run(task, task_queue)
    out = result.outputs
    assert out["exit-code"] == 0 and out["stdout"] == "out hello\n/tmp\nnobody\n" and out["stderr"] == "oops\n"
    assert out["container"] == name and len(out["container-id"]) == 64 and out["truncated"] is False
    assert {"out hello", "oops", "nobody"} <= set(result.log_tail)  # streamed to the run's log
    # The step's env: reaches the command too, like a GitHub Actions container job.
    step_env = await step_harness.run(
        make_step(
            "docker/exec", {"container": name, "command": ["sh", "-c", 'echo "$STEP_LEVEL"']}, env={"STEP_LEVEL": "x y"}
        ),
        task_queue,
    )
    assert step_env.outputs["stdout"] == "x y\n"


async def test_output_is_capped_to_its_tail(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    task = make_step(
        "docker/exec", {"container": name, "command": ["sh", "-c", "seq 1 2000"], "output-cap": "20"}
    )
    out = (await step_harness.run(task, task_queue)).outputs
    assert out["truncated"] is True and out["stdout"].endswith("1999\n2000\n") and len(out["stdout"]) <= 20


async def test_non_zero_exit_fails_and_is_retried(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    task = make_step("docker/exec", {"container": name, "command": ["sh", "-c", "echo broken >&2; exit 3"]})
    activity_error, cause = await _failure(step_harness, task, task_queue, max_attempts=2)
    assert cause.type == "WaterflowStepFailed" and not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert f"command exited with code 3 in container {name}" in cause.message and "broken" in cause.message
    assert cause.details[1]["exit-code"] == 3 and cause.details[1]["stderr"] == "broken\n"


async def test_a_command_that_does_not_exist(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    task = make_step("docker/exec", {"container": name, "command": ["no-such-program"]})
    _, cause = await _failure(step_harness, task, task_queue)
    assert "exited with code 126" in cause.message and "no-such-program" in cause.message


async def test_unknown_container_is_bad_input(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, docker_test_image: str
) -> None:
    task = make_step("docker/exec", {"container": "wf-test-no-such-container", "command": ["true"]})
    activity_error, cause = await _failure(step_harness, task, task_queue, max_attempts=3)
    assert cause.type == "WaterflowBadInput" and cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert f"no container 'wf-test-no-such-container' on agent {agent.name}" in cause.message


async def test_a_stopped_container_is_a_retryable_failure(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run(command=("true",))
    await eventually(lambda: containers.state(name) == "exited")
    task = make_step("docker/exec", {"container": name, "command": ["true"]})
    _, cause = await _failure(step_harness, task, task_queue)
    assert cause.type == "WaterflowStepFailed" and not cause.non_retryable
    assert f"container {name} is exited, not running" in cause.message


async def test_compose_service_replicas_by_label(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, compose_project: ComposeProject,
    docker_test_image: str,
) -> None:
    compose_project.write(
        f"""
        services:
          worker:
            image: {docker_test_image}
            network_mode: none
            command: [sleep, "3600"]
            scale: 2
        """
    )
    compose_project.compose("up", "-d")
    first = await step_harness.run(
        make_step(
            "docker/exec",
            {"project": compose_project.name, "service": "worker", "command": ["hostname"]},
        ),
        task_queue,
    )
    second = await step_harness.run(
        make_step(
            "docker/exec",
            {"project": compose_project.name, "service": "worker", "index": 2, "command": ["hostname"]},
        ),
        task_queue,
    )
    # Found by label: v1 names it proj_worker_1, v2 proj-worker-1.
    assert first.outputs["container"] in (f"{compose_project.name}_worker_1", f"{compose_project.name}-worker-1")
    assert second.outputs["container"] in (f"{compose_project.name}_worker_2", f"{compose_project.name}-worker-2")
    assert first.outputs["stdout"] != second.outputs["stdout"]

    _, cause = await _failure(
        step_harness,
        make_step("docker/exec", {"project": compose_project.name, "service": "web", "command": ["true"]}),
        task_queue,
    )
    assert cause.non_retryable and f"has no service 'web' on agent {agent.name}; its services: worker" in cause.message
    _, cause = await _failure(
        step_harness,
        make_step(
            "docker/exec", {"project": compose_project.name, "service": "worker", "index": 3, "command": ["true"]}
        ),
        task_queue,
    )
    assert cause.non_retryable and "has no replica 3; replicas: 1, 2" in cause.message
    _, cause = await _failure(
        step_harness,
        make_step("docker/exec", {"project": "wf-test-nothing-here", "service": "web", "command": ["true"]}),
        task_queue,
    )
    assert cause.non_retryable and "has no containers on agent" in cause.message


async def test_cancellation_stops_the_process_in_the_container(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    # A process group: the shell and two children (one ignoring SIGTERM) must all go.
    command = ["sh", "-c", "trap '' TERM; sleep 1001 & (trap '' TERM; sleep 1002) & wait"]
    handle = await step_harness.start(make_step("docker/exec", {"container": name, "command": command}), task_queue,
                                      heartbeat_timeout=2)
    await eventually(lambda: containers.processes(name), lambda procs: any("sleep 1002" in p for p in procs))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    # Only the container's own process is left: the exec'd ones were killed, not just detached from.
    await eventually(lambda: containers.processes(name), lambda procs: procs == ["sleep 3600"])


async def test_step_timeout_stops_the_process(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    task = make_step("docker/exec", {"container": name, "command": ["sleep", "1003"]})
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, task_queue, start_to_close=3, heartbeat_timeout=2)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError) and isinstance(activity_error.cause, TimeoutError)
    await eventually(lambda: containers.processes(name), lambda procs: procs == ["sleep 3600"])


async def test_missing_daemon_is_a_retryable_docker_error(
    step_harness: StepHarness, start_agent: StartAgent, task_queue: str
) -> None:
    agent = start_agent(unique_name(), [task_queue], env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    task = make_step("docker/exec", {"container": "web", "command": ["true"]})
    activity_error, cause = await _failure(step_harness, task, task_queue, max_attempts=2)
    assert cause.type == "WaterflowDockerUnavailable" and not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert f"no Docker daemon socket at /nonexistent/docker.sock on agent {agent.name}" in cause.message


async def test_a_remote_docker_host_is_refused(
    step_harness: StepHarness, start_agent: StartAgent, task_queue: str
) -> None:
    agent = start_agent(unique_name(), [task_queue], env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    _, cause = await _failure(
        step_harness, make_step("docker/exec", {"container": "web", "command": ["true"]}), task_queue, max_attempts=3
    )
    assert cause.type == "WaterflowDockerUnavailable" and cause.non_retryable
    assert f"DOCKER_HOST='tcp://127.0.0.1:2375' on agent {agent.name}" in cause.message


# -- attacks ------------------------------------------------------------------------------


async def test_arguments_reach_the_container_literally(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, containers: Containers
) -> None:
    name = containers.run()
    hostile = ["--privileged", "-u", "$(id)", "`id`", "; rm -rf /", "a && b | c > /tmp/owned", "*", "$HOME", "'\""]
    task = make_step(
        "docker/exec",
        {"container": name, "command": ["printf", "%s\\n", *hostile, "$<< inputs.value >>"]},
        contexts={"inputs": {"value": "--user=root; $(reboot)"}},
    )
    out = (await step_harness.run(task, task_queue)).outputs
    assert out["stdout"].split("\n")[:-1] == [*hostile, "--user=root; $(reboot)"]
    empty = await step_harness.run(make_step("docker/exec", {"container": name, "command": ["ls", "/tmp"]}), task_queue)
    assert empty.outputs["stdout"] == ""  # nothing was redirected anywhere


async def test_expression_values_cannot_become_options(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, docker_test_image: str
) -> None:
    cases = [
        ("container", "--privileged", {}),
        ("container", "-it", {}),
        ("container", "../images/create?fromImage=evil", {}),
        ("project", "--all", {"service": "s"}),
        ("service", "-d", {"project": "p"}),
        ("user", "--privileged", {"container": "c"}),
        ("workdir", "-w", {"container": "c"}),
    ]
    for field, value, rest in cases:
        task = make_step(
            "docker/exec",
            {**rest, "command": ["true"], field: "$<< inputs.value >>"},
            contexts={"inputs": {"value": value}},
        )
        _, cause = await _failure(step_harness, task, task_queue)
        assert cause.type == "WaterflowBadInput" and cause.non_retryable, (field, value)
        assert f"with.{field}" in cause.message, cause.message
    env = make_step("docker/exec", {"container": "c", "command": ["true"], "env": {"LD_PRELOAD=/x.so A": "1"}})
    _, cause = await _failure(step_harness, env, task_queue)
    assert cause.type == "WaterflowBadInput" and "without '=' or NUL" in cause.message
