"""``order-dispatch webhooks``: the webhook endpoints, managed from the command line."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from order_dispatch.webhooks import Endpoint, EndpointBook

_redis_option = click.option(
    "--redis-url", envvar="REDIS_URL", help="Redis of the workers (default: $REDIS_URL)."
)


def _book(redis_url: str | None) -> EndpointBook:
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch.settings import get_settings
    from order_dispatch.webhooks import EndpointBook

    settings = get_settings()
    client = redis_client(settings, url=redis_url)
    return EndpointBook(client, Keys(settings.key_prefix))


def _row(endpoint: Endpoint) -> list[str]:
    state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason or '-'})"
    return [
        endpoint.id,
        state,
        ",".join(endpoint.events) or "all",
        endpoint.vendor or "all",
        endpoint.url,
    ]


@contextlib.contextmanager
def _known(endpoint_id: str) -> Iterator[None]:
    """Run the block; an unknown ``endpoint_id`` becomes the command's error."""
    from order_dispatch.webhooks import EndpointNotFound

    try:
        yield
    except EndpointNotFound:
        raise click.ClickException(
            f"no webhook endpoint {endpoint_id!r} (see: webhooks list)"
        ) from None


@click.group()
def webhooks() -> None:
    """Webhook endpoints: every result event they subscribe to is POSTed to them, signed per
    Standard Webhooks (verify with the `standardwebhooks` library and the endpoint's secret)."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--events",
    help="Comma-separated statuses to send (accepted, rejected, dead_lettered, in_doubt, "
    "retry_scheduled, deferred, replayed, purged; default: all).",
)
@click.option("--vendor", help="Only events of this vendor (default: every vendor).")
@click.option("--description", help="What the endpoint is, for people.")
@click.option(
    "--rate",
    type=float,
    help="Requests a minute to this endpoint, shared by every worker "
    "(default: ORDER_DISPATCH_WEBHOOKS_RATE_PER_MINUTE; 0: none).",
)
@_redis_option
def add(
    url: str,
    events: str | None,
    vendor: str | None,
    description: str | None,
    rate: float | None,
    redis_url: str | None,
) -> None:
    """Register an endpoint at URL; prints its id and its secret (shown this once).

    The URL must be https and must not resolve to a loopback, private, link-local or cloud
    metadata address (ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE=true lifts both rules).
    """
    from order_dispatch.egress import EndpointRefused
    from order_dispatch.settings import get_settings

    try:
        endpoint = _book(redis_url).add(
            url,
            allow_private=get_settings().webhooks_allow_private,
            events=(events or "").split(","),
            vendor=vendor,
            description=description,
            rate_per_minute=rate,
        )
    except EndpointRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"id:     {endpoint.id}")
    click.echo(f"secret: {endpoint.secrets[0].value}")
    click.echo("Keep the secret: it is not shown again (rotate-secret makes a new one).", err=True)


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (no secrets).")
@_redis_option
def list_(as_json: bool, redis_url: str | None) -> None:
    """The endpoints, oldest first."""
    from order_dispatch_cli.operations import table

    endpoints = _book(redis_url).all()
    if as_json:
        for endpoint in endpoints:
            click.echo(json.dumps(endpoint.public()))
        return
    if not endpoints:
        click.echo("no webhook endpoints")
        return
    click.echo(table(["ID", "STATE", "EVENTS", "VENDOR", "URL"], [_row(e) for e in endpoints]))


@webhooks.command("disable")
@click.argument("endpoint_id", metavar="ID")
@click.option("--reason", default="disabled by an operator", show_default=True)
@_redis_option
def disable(endpoint_id: str, reason: str, redis_url: str | None) -> None:
    """Stop sending to endpoint ID (its queued deliveries end in the dead letters)."""
    with _known(endpoint_id):
        _book(redis_url).disable(endpoint_id, reason)
    click.echo(f"{endpoint_id} disabled")


@webhooks.command("enable")
@click.argument("endpoint_id", metavar="ID")
@_redis_option
def enable(endpoint_id: str, redis_url: str | None) -> None:
    """Send to endpoint ID again (replay its dead letters with `replay --vendor webhooks`)."""
    with _known(endpoint_id):
        _book(redis_url).enable(endpoint_id)
    click.echo(f"{endpoint_id} enabled")


@webhooks.command("delete")
@click.argument("endpoint_id", metavar="ID")
@_redis_option
def delete(endpoint_id: str, redis_url: str | None) -> None:
    """Forget endpoint ID."""
    with _known(endpoint_id):
        _book(redis_url).delete(endpoint_id)
    click.echo(f"{endpoint_id} deleted")


@webhooks.command("rotate-secret")
@click.argument("endpoint_id", metavar="ID")
@_redis_option
def rotate_secret(endpoint_id: str, redis_url: str | None) -> None:
    """Give endpoint ID a new secret; the old one still signs beside it for 24 h."""
    with _known(endpoint_id):
        _, secret = _book(redis_url).rotate_secret(endpoint_id)
    click.echo(f"secret: {secret}")
    click.echo("The old secret signs beside the new one for 24 h.", err=True)


@webhooks.command("test")
@click.argument("endpoint_id", metavar="ID")
@_redis_option
def test(endpoint_id: str, redis_url: str | None) -> None:
    """Send a `webhook.ping` to endpoint ID (see `order-dispatch timeline` for its fate)."""
    from order_dispatch.webhooks import ping_job
    from producers.enqueue import Producer

    book = _book(redis_url)
    with _known(endpoint_id):
        book.get(endpoint_id)
    receipt = Producer(book.client).enqueue_deliveries([ping_job(endpoint_id)])[0]
    click.echo(f"ping queued: {receipt.job_id}")
