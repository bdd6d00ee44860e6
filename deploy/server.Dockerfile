# The Waterflow API server with its interpreter worker, from the wheels deploy/build-wheels made.
#   docker build -f server.Dockerfile -t waterflow-server:0.1.0 deploy/
# PYTHON_IMAGE: any Debian-based image with python3 (3.11) and its venv module.
# PIP_INSTALL_OPTIONS: e.g. "--no-index" when deploy/wheels/ holds every dependency (--with-deps).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_INSTALL_OPTIONS=""
COPY wheels/ /wheels/
# Waterflow's own distributions are installed from their files, never by name from an index, so a
# same-named package elsewhere cannot replace them. The node packages give the server the schemas
# to check `with:` at submit time.
RUN python3 -m venv /opt/waterflow \
 && /opt/waterflow/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_INSTALL_OPTIONS} \
      --find-links /wheels \
      /wheels/waterflow_core-*.whl /wheels/waterflow_sdk-*.whl /wheels/waterflow_node_flow-*.whl \
      /wheels/waterflow_server-*.whl /wheels/waterflow_node_shell-*.whl \
      /wheels/waterflow_node_http-*.whl /wheels/waterflow_node_file-*.whl \
      /wheels/waterflow_node_docker-*.whl

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin waterflow
COPY --from=build /opt/waterflow /opt/waterflow
ENV PATH=/opt/waterflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
# GET /healthz needs no token; 127.0.0.1 passes the Host check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# Refuses to start on 0.0.0.0 without WATERFLOW_API_TOKEN or WATERFLOW_API_TOKEN_FILE.
CMD ["waterflow", "server", "--host=0.0.0.0", "--port=8080"]
