# One image for the dispatch workers, Flower, the metrics endpoint and the vendor sandbox.
#   docker build -t order-dispatch:0.1.0 .
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Pinned dependencies first: this layer is rebuilt only when the lock file changes.
COPY deploy/requirements.lock ./deploy/requirements.lock
RUN pip install --no-cache-dir --requirement deploy/requirements.lock \
    && useradd --create-home --uid 10001 --user-group dispatch

COPY pyproject.toml README.md ./
COPY order_dispatch ./order_dispatch
COPY producers ./producers
COPY worker ./worker
COPY order_dispatch_sandbox ./order_dispatch_sandbox
COPY order_dispatch_ops ./order_dispatch_ops
COPY order_dispatch_cli ./order_dispatch_cli
COPY order_dispatch_api ./order_dispatch_api
# The product itself; its dependencies are all in the lock file already.
RUN pip install --no-cache-dir --no-deps .

USER 10001:10001
CMD ["order-dispatch", "worker"]
