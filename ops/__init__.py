"""Operations: what the product's state in Redis looks like (:mod:`ops.state`), as Prometheus
metrics (:mod:`ops.metrics`) and as a health verdict (:mod:`ops.health`).

Imports the foundation and the producers' message format only; the ``order-dispatch``
command line wires it to the workers' Celery app and vendor registry.
"""
