"""The enqueue side: validate normalized orders and queue them for the workers.

Importing this package loads the contract and redis-py only: no httpx, no Celery, no worker or
vendor code, so any service can enqueue cheaply.

>>> from producers import Producer
>>> producer = Producer.from_url("redis://127.0.0.1:6379/0")       # doctest: +SKIP
>>> receipt = producer.enqueue({"vendor": "sourceorders", "order": {...}})  # doctest: +SKIP
"""

from producers.enqueue import InvalidJob, Producer, Receipt, enqueue, enqueue_many

__all__ = ["InvalidJob", "Producer", "Receipt", "enqueue", "enqueue_many"]
