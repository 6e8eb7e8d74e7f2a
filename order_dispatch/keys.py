"""Names of everything the product keeps in Redis, in one place."""

from __future__ import annotations

from dataclasses import dataclass

#: The one task the workers run; producers write messages for it by name.
DISPATCH_TASK = "worker.tasks.dispatch"


def queue_for(vendor: str, prefix: str = "od") -> str:
    """The Celery queue of a vendor: one per vendor, so a slow vendor cannot starve the others."""
    return f"{prefix}.{vendor}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names under one prefix."""

    prefix: str = "od"

    def queue(self, vendor: str) -> str:
        """The Celery queue (a Redis list) of ``vendor``'s jobs."""
        return queue_for(vendor, self.prefix)

    def job(self, job_id: str) -> str:
        """Hash: the job document and its enqueue receipt (the duplicate check)."""
        return f"{self.prefix}:job:{job_id}"

    def ledger(self, job_id: str) -> str:
        """Hash: the job's delivery ledger (attempts in flight, outcome)."""
        return f"{self.prefix}:ledger:{job_id}"

    def terminal(self, job_id: str, run: int) -> str:
        """String: the event id of a run's terminal event (exactly one per run)."""
        return f"{self.prefix}:terminal:{job_id}:{run}"

    @property
    def results(self) -> str:
        """Stream: result events."""
        return f"{self.prefix}:results"

    @property
    def dead_letters(self) -> str:
        """Hash: job id -> job document of dead-lettered and in-doubt jobs, for replay."""
        return f"{self.prefix}:dead"

    @property
    def quarantine(self) -> str:
        """Stream: messages the workers could not decode or run, each with its raw bytes and
        the reason."""
        return f"{self.prefix}:quarantine"
