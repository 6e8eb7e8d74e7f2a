"""``celeryconfig`` holds Celery settings and nothing else (``inspect conf`` shows every name)."""

from __future__ import annotations

import importlib

from celery.app.defaults import DEFAULTS


def test_every_public_name_is_a_celery_setting() -> None:
    from worker import celeryconfig

    config = importlib.reload(celeryconfig)
    public = {name for name in vars(config) if not name.startswith("_")}

    assert public - set(DEFAULTS) == set()
    assert {"broker_url", "task_acks_late", "worker_prefetch_multiplier"} <= public
