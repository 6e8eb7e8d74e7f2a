"""Operations: what the product's state in Redis looks like (:mod:`order_dispatch_ops.state`),
as Prometheus metrics (:mod:`order_dispatch_ops.metrics`) and as a health verdict
(:mod:`order_dispatch_ops.health`).

Imports the foundation and the producers' message format only; the ``order-dispatch``
command line wires it to the workers' Celery app and vendor registry.
"""
