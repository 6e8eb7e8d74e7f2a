"""The HTTP API (``order-dispatch api``): enqueue jobs, look them up and follow their result
events from any language, with API keys, scopes and a per-key rate limit.

Modules: :mod:`~order_dispatch_api.keystore` (keys, scopes, the rate limit),
:mod:`~order_dispatch_api.app` (the ASGI app and its routers; a console router is added there
with :func:`~order_dispatch_api.app.require` for its scope checks),
:mod:`~order_dispatch_api.jobs` (every read of job state the API makes, through the job store),
:mod:`~order_dispatch_api.problems` (RFC 9457 errors), :mod:`~order_dispatch_api.clients` (the
Redis clients), :mod:`~order_dispatch_api.metrics` (Prometheus),
:mod:`~order_dispatch_api.protocol` (the bounded request head),
:mod:`~order_dispatch_api.webhooks` (webhook endpoints, ``operate`` scope),
:mod:`~order_dispatch_api.server`
(start-up checks and uvicorn).
"""
