"""``order-dispatch webhooks`` names an unknown endpoint the same way in every command."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "args", [["disable"], ["enable"], ["delete"], ["rotate-secret"], ["test"]]
)
def test_every_command_on_an_unknown_endpoint_says_which_and_where_to_look(
    redis_url: str, args: list[str]
) -> None:
    prefix = f"odwc-{uuid.uuid4().hex[:6]}"
    result = cli(redis_url, prefix, "webhooks", *args, "ep_nope")
    assert result.exit_code == 1, result.output
    assert "no webhook endpoint 'ep_nope' (see: webhooks list)" in result.output
