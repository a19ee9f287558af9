# syntax=docker/dockerfile:1
# One image for every modelcycle process: the API and dashboard (`modelcycle serve`), the MLflow
# server and the Dagster webserver, daemon and code server (`modelcycle service ...`), the Dagster
# run Jobs (`dagster api execute_run`, started by the Kubernetes run launcher) and one-off CLI jobs.
# Build: docker build -t modelcycle:$(git rev-parse --short HEAD) .   (docs/deployment.md)

ARG UV_VERSION=0.13.8

# --- build stage: compilers allowed here, never in the final image -------------------------------
FROM python:3.11.14-slim-bookworm AS build
ARG UV_VERSION
# No bytecode compiled ahead: the .pyc files would add ~0.3 GB and break the 1.2 GB budget; Python
# compiles what it imports at start (a few seconds per process, docs/deployment.md).
ENV PIP_NO_CACHE_DIR=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/modelcycle/.venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /opt/modelcycle
# dependencies first (cached while only the code changes), exactly as uv.lock pins them
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY workspace.yaml ./
RUN uv sync --frozen --no-dev --no-editable
# What never runs in the image: the libraries' own test suites, C headers and sources, and the
# web UIs' JavaScript source maps (~0.11 GB).
RUN find .venv/lib/python3.11/site-packages -depth -type d \( -name tests -o -name include \) \
        -exec rm -rf {} + \
    && find .venv/lib/python3.11/site-packages -type f \
        \( -name '*.map' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' \) -delete
# The dashboard serves only plotly.min.js from the plotly package (serving/web/pages.py) and never
# imports its Python figure API or Jupyter widget: ~33 MB.
RUN cd .venv/lib/python3.11/site-packages/plotly \
    && rm -rf graph_objs validators labextension package_data/datasets package_data/widgetbundle.js

# --- final stage: the virtual environment and a non-root user, nothing else -----------------------
FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="modelcycle" \
      org.opencontainers.image.licenses="Apache-2.0"
# libgomp1: LightGBM's OpenMP runtime (a shared library, not a compiler)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 modelcycle \
    && useradd --system --uid 10001 --gid modelcycle --home-dir /home/modelcycle --create-home modelcycle
COPY --from=build --chown=root:root /opt/modelcycle/.venv /opt/modelcycle/.venv
ENV PATH=/opt/modelcycle/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELCYCLE_HOME=/var/lib/modelcycle \
    MODELCYCLE_DAGSTER_HOME=/var/lib/modelcycle/dagster \
    MODELCYCLE_LOG_FORMAT=json
RUN mkdir -p /var/lib/modelcycle && chown modelcycle:modelcycle /var/lib/modelcycle
WORKDIR /var/lib/modelcycle
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# No ENTRYPOINT on purpose: Dagster's Kubernetes run launcher starts run Jobs with
# `dagster api execute_run ...` as the container's arguments, which an ENTRYPOINT would prefix.
# Every other process is `modelcycle COMMAND` (compose.yaml, deploy/k8s).
CMD ["modelcycle", "--help"]
