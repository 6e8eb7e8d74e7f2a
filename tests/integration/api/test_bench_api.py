"""``order-dispatch bench --api`` runs end to end (a smoke test; its figures are not judged)."""

from __future__ import annotations

import pytest

from benchmarks.api_bench import ApiOptions, markdown, run_api
from tests.integration import debian

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("wrk", [False, True], ids=["python-generator", "wrk"])
def test_the_api_bench_measures_every_row_with_every_job_accepted(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, wrk: bool
) -> None:
    if wrk:
        debian.ensure("wrk", "wrk")  # Debian's wrk: the bench's generator when it is installed
    monkeypatch.setenv("REDIS_URL", redis_url)
    options = ApiOptions(
        workers=1,
        single_jobs=60,
        single_s=1,
        wrk=wrk,
        connections=4,
        offered=50,
        offered_s=0.5,
        batch=20,
        batch_jobs=100,
        batch_connections=2,
        floor_jobs=50,
    )

    results = run_api(options, say=lambda line: None)

    if wrk:
        assert results["single"]["generator"] == "wrk"
        assert set(results["single"]["statuses"]) == {"2xx"}
        assert results["single"]["jobs"] > 0
    else:
        assert results["single"]["statuses"] == {"201": 60}
    assert results["latency"]["statuses"] == {"201": 25}
    assert results["batch"]["statuses"] == {"201": 5}
    table = markdown(results)
    assert table.count("\n| ") == 6  # the header and five rows
