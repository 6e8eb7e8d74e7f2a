"""The dispatch worker: Celery tasks (thin), the pipeline, vendor adapters, delivery policy."""
