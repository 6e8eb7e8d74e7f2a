# One image for the worker, the sandbox and Flower.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md celeryconfig.py ./
COPY order_dispatch ./order_dispatch
COPY producers ./producers
COPY worker ./worker
COPY sandbox ./sandbox
RUN pip install --no-cache-dir '.[flower]'
RUN useradd --create-home --uid 10001 dispatch
USER dispatch
CMD ["order-dispatch", "worker"]
