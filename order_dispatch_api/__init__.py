"""The HTTP API (``order-dispatch api``): enqueue jobs, look them up and follow their result
events from any language, with API keys, scopes and a per-key rate limit.

Modules: :mod:`~order_dispatch_api.keystore` (keys, scopes, the rate limit),
:mod:`~order_dispatch_api.app` (the ASGI app and its routers), :mod:`~order_dispatch_api.jobs`
(every read of job state the API makes), :mod:`~order_dispatch_api.problems` (RFC 9457 errors),
:mod:`~order_dispatch_api.clients` (the Redis clients), :mod:`~order_dispatch_api.server`
(start-up checks and uvicorn).
"""
