# A Waterflow agent with the node library, from the wheels deploy/build-wheels made.
#   docker build -f agent.Dockerfile -t waterflow-agent:0.1.0 deploy/
# PYTHON_IMAGE and PIP_INSTALL_OPTIONS: as in server.Dockerfile.
# Name and groups come from the environment (WATERFLOW_AGENT_NAME, WATERFLOW_AGENT_GROUPS);
# mount a volume on /var/lib/waterflow to keep the workdir (its logs and step ledger).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_INSTALL_OPTIONS=""
COPY wheels/ /wheels/
# By file, never by name from an index (see server.Dockerfile).
RUN python3 -m venv /opt/waterflow \
 && /opt/waterflow/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_INSTALL_OPTIONS} \
      --find-links /wheels \
      /wheels/waterflow_core-*.whl /wheels/waterflow_sdk-*.whl /wheels/waterflow_agent-*.whl \
      /wheels/waterflow_node_shell-*.whl /wheels/waterflow_node_http-*.whl \
      /wheels/waterflow_node_file-*.whl /wheels/waterflow_node_docker-*.whl

FROM ${PYTHON_IMAGE}
# The workdir exists and belongs to the agent's user before a volume is mounted on it, so a new
# named volume takes that ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/waterflow --no-create-home \
      --shell /usr/sbin/nologin waterflow \
 && install -d -o waterflow -g waterflow -m 0700 /var/lib/waterflow
COPY --from=build /opt/waterflow /opt/waterflow
ENV PATH=/opt/waterflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WATERFLOW_AGENT_WORKDIR=/var/lib/waterflow/agent
USER 10001:10001
WORKDIR /var/lib/waterflow
# -P: the working directory, which steps write, is never importable.
CMD ["python", "-P", "-m", "waterflow_agent"]
