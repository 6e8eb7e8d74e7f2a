"""The repository's ``celeryconfig``: Celery's settings for the dispatch workers.

The settings and their reasons live in :mod:`worker.celeryconfig`, which installs with the
``worker`` package (the product puts no generic top-level module into site-packages). This file
keeps ``celery --config celeryconfig`` working from a checkout.
"""

from worker.celeryconfig import *  # noqa: F403
