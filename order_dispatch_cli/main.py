"""The ``order-dispatch`` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from order_dispatch.keys import DEAD_LETTER_STATUSES
from order_dispatch_cli.webhooks import webhooks
from worker.vendors import known_vendors

if TYPE_CHECKING:
    from order_dispatch_ops.actions import Operations

SCHEMAS = ("order", "job", "event")


def celery_main(app: Any, argv: list[str]) -> int:
    """Run Celery's own command line (``celery worker``, ``celery flower``) on ``app``.

    Returns the command's exit code: ``app.worker_main`` drops it (a worker that failed would
    exit 0, and a supervisor would not know to restart it).
    """
    from celery.bin.celery import celery

    celery.params[0].default = app
    try:
        code = celery.main(args=argv, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    finally:
        celery.params[0].default = None
    return code if isinstance(code, int) else 0


class _Main(click.Group):
    """The command group: an infrastructure failure is one line and exit code 3, not a
    traceback (unless ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        from order_dispatch_cli.errors import EXIT_INFRASTRUCTURE, describe

        try:
            return super().invoke(ctx)
        except Exception as exc:
            line = describe(exc)
            if line is None:
                raise
            if ctx.params.get("debug"):
                import traceback

                traceback.print_exc()
            click.echo(f"error: {line}", err=True)
            ctx.exit(EXIT_INFRASTRUCTURE)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-dispatch")
@click.option("--debug", is_flag=True, help="Show the traceback of an infrastructure failure.")
def main(debug: bool) -> None:
    """Dispatch normalized orders to fulfilment vendors through Celery workers.

    Exit codes: 0 done; 1 bad input or an unhealthy check; 2 a wrong command line; 3 Redis,
    the broker or the settings failed (one line says which setting to fix; --debug shows the
    traceback).
    """


@main.command()
@click.argument("document", type=click.Choice(SCHEMAS))
def schema(document: str) -> None:
    """Print the JSON Schema of the normalized ORDER, the JOB envelope or the result EVENT."""
    from pydantic import BaseModel

    from order_dispatch.contract import Job, NormalizedOrder, ResultEvent

    models: dict[str, type[BaseModel]] = {
        "order": NormalizedOrder,
        "job": Job,
        "event": ResultEvent,
    }
    model = models[document]
    click.echo(json.dumps(model.model_json_schema(), indent=2))


@main.group()
def config() -> None:
    """The configuration the commands run with."""


@config.command("show")
def config_show() -> None:
    """Print the effective configuration as JSON: every setting (defaults included, read from
    ORDER_DISPATCH_* and REDIS_URL), the vendor accounts, and what is derived from them.
    Credentials, passwords in URLs and logins are masked (***)."""
    from order_dispatch.settings import get_settings
    from order_dispatch_cli.config import effective

    click.echo(json.dumps(effective(get_settings()), indent=2))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.File("rb"))
@click.option("--vendor", help="Vendor for records that are bare orders (not jobs).")
@click.option("--account", help="Account for bare orders (default: 'default').")
@click.option("--operation", help="Operation for bare orders (default: 'create').")
@click.option("--redis-url", envvar="REDIS_URL", help="Redis of the workers (default: $REDIS_URL).")
@click.option("--batch-size", default=500, show_default=True, help="Jobs per round trip.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def enqueue(
    files: Sequence[Any],
    vendor: str | None,
    account: str | None,
    operation: str | None,
    redis_url: str | None,
    batch_size: int,
    quiet: bool,
) -> None:
    """Validate and queue the jobs in FILES (JSON Lines, or one JSON object; '-' reads stdin).

    A record with a "vendor" field is a job; any other record is an order, sent to --vendor.
    Files are read record by record, as UTF-8 (a leading byte-order mark is skipped). Invalid
    records (a line that is not UTF-8 or not JSON, a job that fails the contract) are reported
    with file, line and every bad field, and never queued; the valid ones are. The summary
    (queued, duplicates, invalid) is printed whatever stopped the files. Exits 1 when any record
    was invalid, or a file holds an array or no records at all.
    """
    from order_dispatch.money import paid_mismatch
    from producers.enqueue import InvalidJob, Producer, validate_job
    from producers.files import as_job, read_records

    records = (
        r for f in files for r in read_records(f, str(getattr(f, "name", "<stdin>")))
    )
    producer = Producer.from_url(redis_url)
    queued = duplicates = 0
    invalid: list[str] = []
    batch: list[Any] = []

    def flush() -> None:
        nonlocal queued, duplicates
        for receipt in producer.enqueue_many(batch):
            if receipt.duplicate:
                duplicates += 1
            else:
                queued += 1
        batch.clear()

    failed = True
    try:
        with (
            open(os.devnull, "w") if quiet else contextlib.nullcontext(sys.stderr) as progress_out,
            click.progressbar(records, label="enqueueing", file=progress_out) as bar,
        ):
            for record in bar:
                if record.error is not None:
                    invalid.append(f"{record.where}: {record.error}")
                    continue
                data = as_job(record.data, vendor=vendor, account=account, operation=operation)
                try:
                    job = validate_job(data, source=record.where)
                except InvalidJob as exc:
                    invalid.append(str(exc))
                    continue
                note = paid_mismatch(job.order) if job.order is not None else None
                if note:
                    click.echo(f"warning: {record.where}: {note}", err=True)
                batch.append(job)
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
        failed = False
    finally:
        # Whatever stopped the files, say what was done (the error follows on stderr).
        for line in invalid:
            click.echo(f"invalid: {line}", err=True)
        click.echo(f"queued {queued}, duplicates {duplicates}, invalid {len(invalid)}")
        if failed and (queued or duplicates):
            click.echo(
                "stopped before the end of the files; enqueueing them again is safe (jobs "
                "already queued count as duplicates)",
                err=True,
            )
    if invalid:
        sys.exit(1)


@main.command()
@click.option("--vendor", required=True, help="The vendor whose request to show.")
@click.option("--account", help="Account name (default: 'default').")
@click.option("--operation", help="Operation for a bare order (default: 'create').")
@click.argument("file", type=click.File("r"))
def preview(vendor: str, account: str | None, operation: str | None, file: Any) -> None:
    """Print, as JSON, the exact request the worker would send for FILE, without sending it.

    FILE holds a normalized order (sent to --vendor) or a whole job. Secrets are masked. With no
    account configured, placeholder credentials stand in and the output says so. Exits 1 when
    the order breaks the contract or a vendor limit, naming the field and the limit.
    """
    from order_dispatch.contract import Job, ValidationError, format_validation_errors
    from order_dispatch.settings import get_settings
    from order_dispatch_cli.preview import dump, job_from
    from order_dispatch_cli.preview import preview as build
    from worker.vendors.base import ConfigurationError, TranslationError

    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{file.name}: not JSON ({exc})") from None
    try:
        job = Job.model_validate(job_from(data, vendor, account, operation))
    except ValidationError as exc:
        for line in format_validation_errors(exc):
            click.echo(f"invalid: {line}", err=True)
        sys.exit(1)
    try:
        click.echo(dump(build(job, get_settings())))
    except TranslationError as exc:
        click.echo(f"invalid for {job.vendor}: {exc}", err=True)
        sys.exit(1)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--vendors", help="Comma-separated vendors whose queues to consume (default: all).")
@click.option("--concurrency", "-c", type=int, help="Threads per process (default: settings, 512).")
@click.option(
    "--processes",
    "-p",
    type=click.IntRange(min=1),
    help="Worker processes (default: settings; one per core).",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    vendors: str | None,
    concurrency: int | None,
    processes: int | None,
    celery_args: tuple[str, ...],
) -> None:
    """Start a dispatch worker with the product's defaults; extra arguments go to Celery.

    Defaults: one process per core (each a Celery node named after --hostname with its number
    added; they start and stop together), each with a thread pool (vendor calls are I/O-bound
    and share one HTTP client), one queue per vendor, task events on for Flower, JSON logs.

    Exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGQUIT), 78 when the worker refuses
    its configuration (a Redis without append-only persistence, wrong account settings), and
    another non-zero status when it stopped by itself (1 after an unrecoverable error).
    """
    from order_dispatch.settings import get_settings
    from order_dispatch_cli import swarm

    settings = get_settings()
    processes = processes or settings.worker_processes or swarm.default_processes()
    if processes > 1:
        from order_dispatch import logs

        logs.configure(settings.log_level)
        head = swarm.this_command()
        head += ["--vendors", vendors] if vendors else []
        head += ["--concurrency", str(concurrency)] if concurrency else []
        sys.exit(swarm.run(processes, head, celery_args))

    from worker.app import app
    from worker.shutdown import exit_status

    # By default a worker also sends webhook deliveries (queue <prefix>.webhooks).
    names = [v.strip() for v in vendors.split(",")] if vendors else [*known_vendors(), "webhooks"]
    from order_dispatch.keys import Keys

    keys = Keys(settings.key_prefix)
    argv = [
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency or settings.worker_concurrency),
        "--queues",
        ",".join(keys.queue(v) for v in names),
        *(["--task-events"] if settings.task_events else []),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        settings.log_level,
        *swarm.named(celery_args),
    ]
    # app.start (and worker_main) return None whatever the worker's exit status was.
    app.start(argv)
    sys.exit(exit_status())


def product_vendors() -> list[str]:
    """Every vendor the product knows: those with an adapter and those with an account
    configured (their queues fill even when no worker consumes them)."""
    from order_dispatch.settings import get_settings

    return sorted({*known_vendors(), "webhooks", *get_settings().accounts})


METRICS_LOGIN_ENV = "ORDER_DISPATCH_METRICS_BASIC_AUTH"


@main.command()
@click.option(
    "--address",
    envvar="ORDER_DISPATCH_METRICS_ADDRESS",
    default="127.0.0.1",
    show_default=True,
    help=f"Listen address; anything but loopback needs {METRICS_LOGIN_ENV}.",
)
@click.option(
    "--port", envvar="ORDER_DISPATCH_METRICS_PORT", default=9808, show_default=True, type=int
)
@click.option(
    "--group",
    default="metrics",
    show_default=True,
    help="Consumer group this process reads the result stream in (one per metrics process).",
)
def metrics(address: str, port: int, group: str) -> None:
    """Serve the product's Prometheus metrics on http://ADDRESS:PORT/metrics.

    Queue depths and ages, delayed retries, dead letters, in-doubt jobs, circuits and the
    result stream are read from Redis at each scrape; outcome counters and vendor latency come
    from the result stream. Run one such process per deployment (not one per worker). With
    ORDER_DISPATCH_METRICS_BASIC_AUTH=user:password set, scrapes need that login.
    """
    import signal

    from order_dispatch import logs
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch.settings import get_settings
    from order_dispatch_ops.auth import parse_logins, require_login_beyond_loopback
    from order_dispatch_ops.metrics import build_registry, make_server

    settings = get_settings()
    raw_logins = os.environ.get(METRICS_LOGIN_ENV, "")
    try:
        logins = parse_logins(raw_logins, METRICS_LOGIN_ENV) if raw_logins else []
        require_login_beyond_loopback(address, bool(logins), METRICS_LOGIN_ENV)
    except ValueError as exc:
        raise click.UsageError(f"metrics: {exc}") from None
    logs.configure(settings.log_level)
    client = redis_client(settings, socket_timeout=10)
    accounts = {vendor: sorted(names) for vendor, names in settings.accounts.items()}
    registry, follower = build_registry(
        client,
        Keys(settings.key_prefix),
        product_vendors(),
        accounts,
        group,
        queues_in_redis=settings.broker_is_redis,
    )
    server = make_server(registry, address, port, logins)

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    follower.start()
    click.echo(f"metrics on http://{address}:{port}/metrics", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
        server.server_close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option(
    "--max-age", default=600.0, show_default=True, help="Oldest job allowed in a queue, seconds."
)
@click.option("--max-dead", default=100, show_default=True, help="Dead letters allowed.")
@click.option("--max-in-doubt", default=10, show_default=True, help="In-doubt jobs allowed.")
@click.option(
    "--max-quarantined", default=10, show_default=True, help="Quarantined messages allowed."
)
@click.option(
    "--timeout", default=5.0, show_default=True, help="Seconds to wait for workers to answer."
)
@click.option(
    "--api-url",
    envvar="ORDER_DISPATCH_API_URL",
    help="The HTTP API's base URL (e.g. http://127.0.0.1:8700); its /readyz must answer 200.",
)
def health(
    as_json: bool,
    max_age: float,
    max_dead: int,
    max_in_doubt: int,
    max_quarantined: int,
    timeout: float,
    api_url: str | None,
) -> None:
    """Check the deployment; exit 0 when healthy, 1 with a one-line reason when not.

    Unhealthy: the broker or Redis unreachable, no worker answering a ping, a queue whose
    oldest job is older than --max-age, more dead letters, in-doubt jobs or quarantined
    messages than allowed, a vendor account's circuit open, or (with --api-url or
    ORDER_DISPATCH_API_URL) the HTTP API not ready. Every vendor queue counts, consumed by a
    worker or not.
    """
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch.settings import get_settings
    from order_dispatch_ops.health import Thresholds, api_check, evaluate
    from order_dispatch_ops.state import StateReader

    settings = get_settings()
    client = redis_client(settings, socket_timeout=timeout, socket_connect_timeout=timeout)
    accounts = {vendor: sorted(names) for vendor, names in settings.accounts.items()}
    keys = Keys(settings.key_prefix)
    vendors = product_vendors()
    reader = StateReader(client, keys, vendors, accounts, queues_in_redis=settings.broker_is_redis)
    queues = [keys.queue(v) for v in vendors]
    report = evaluate(
        reader,
        lambda: ping_workers(timeout, queues),
        Thresholds(max_age, max_dead, max_in_doubt, max_quarantined),
        api=(lambda: api_check(api_url, timeout)) if api_url else None,
    )
    click.echo(report.to_json() if as_json else report.line())
    sys.exit(0 if report.ok else 1)


def ping_workers(timeout: float, queues: Sequence[str]) -> list[str]:
    """Names of the workers that answer within ``timeout`` seconds and consume one of
    ``queues`` (workers of other deployments on the same broker answer too; they don't count)."""
    from order_dispatch_ops.health import BrokerUnreachable
    from worker.app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=max(1, round(timeout)))
            listening = _listening_nodes(app, conn)
    except Exception as exc:  # kombu raises the transport's own errors
        raise BrokerUnreachable(str(exc) or type(exc).__name__) from None
    # With the number of nodes known, the broadcast ends once each has answered; unknown (or a
    # node that died without leaving), it waits the whole timeout for stragglers.
    replies = app.control.inspect(timeout=timeout, limit=listening).active_queues() or {}
    wanted = set(queues)
    return [name for name, consumed in replies.items() if wanted & {q["name"] for q in consumed}]


def _listening_nodes(app: Any, conn: Any) -> int | None:
    """How many Celery nodes listen for remote control on a Redis broker: the bindings of the
    control exchange, one per node (a node that stops removes its own; a killed one leaves its
    binding, and the ping then waits its whole timeout). None when unknown: another broker, or
    no binding seen."""
    if getattr(conn.transport, "driver_type", None) != "redis":
        return None
    channel = conn.default_channel
    key = channel.keyprefix_queue % app.control.mailbox.exchange.name
    return int(channel.client.scard(key)) or None


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--address",
    envvar="FLOWER_ADDRESS",
    default="127.0.0.1",
    show_default=True,
    help="Listen address; anything but loopback needs FLOWER_BASIC_AUTH (or --auth).",
)
@click.option("--port", envvar="FLOWER_PORT", default=5555, show_default=True, type=int)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(address: str, port: int, flower_args: tuple[str, ...]) -> None:
    """Start Flower on the dispatch workers; extra arguments go to Flower.

    The login comes from FLOWER_BASIC_AUTH=user:password (never the command line); with a
    login set, Flower's /metrics and /healthcheck need it too. Needs the 'flower' extra.
    """
    from order_dispatch_cli.flower import (
        FlowerConfigError,
        flower_argv,
        plain_redis_transport,
        protect_monitor_views,
    )

    try:
        argv = flower_argv(address, port, flower_args)
    except FlowerConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        protect_monitor_views()
    except ImportError:
        raise click.ClickException(
            "Flower is not installed: pip install 'order-dispatch[flower]'"
        ) from None
    from worker.app import app

    plain_redis_transport(app)
    sys.exit(celery_main(app, argv))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="VENDOR.NAME=VALUE",
    help="A simulator setting, e.g. sophio.rate_limit_per_minute=0 (repeatable).",
)
@click.option(
    "--faults",
    metavar="JSON",
    help='Faults from the start, e.g. \'{"sourceorders": {"latency": {"ms": 50}}}\'.',
)
@click.option(
    "--print-accounts",
    is_flag=True,
    help="Print the ORDER_DISPATCH_ACCOUNTS JSON that points every vendor at this sandbox with "
    "the credentials it accepts, and exit.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="With --print-accounts: the sandbox's URL as the workers reach it "
    "(default: http://HOST:PORT).",
)
def sandbox(
    host: str,
    port: int,
    settings: tuple[str, ...],
    faults: str | None,
    print_accounts: bool,
    base_url: str | None,
) -> None:
    """Serve the vendor simulators (and the /_sandbox/ admin API) on HOST:PORT.

    Each vendor answers under its own prefix, e.g. http://HOST:PORT/sourceorders/v1/orders.
    Simulator settings (credentials, switches) come from --set, else from
    ORDER_DISPATCH_SANDBOX_<VENDOR>_<NAME> variables, else their demo defaults.

    --print-accounts prints the vendor accounts for these settings instead, ready for
    ORDER_DISPATCH_ACCOUNTS="$(order-dispatch sandbox --print-accounts)".
    """
    for item in settings:
        name, sep, value = item.partition("=")
        vendor, dot, key = name.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{item!r} is not VENDOR.NAME=VALUE", param_hint="--set")
        os.environ[f"ORDER_DISPATCH_SANDBOX_{vendor.upper()}_{key.upper()}"] = value
    if print_accounts:
        from order_dispatch_sandbox.accounts import sandbox_accounts

        try:
            accounts = sandbox_accounts(base_url or f"http://{host}:{port}")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(accounts, indent=2))
        return
    if base_url:
        raise click.UsageError("--base-url goes with --print-accounts")
    from order_dispatch_sandbox.app import serve

    try:
        initial = json.loads(faults) if faults else {}
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--faults") from None
    click.echo(f"sandbox on http://{host}:{port} (admin API under /_sandbox/)", err=True)
    try:
        serve(host, port, faults=initial)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def results() -> None:
    """Read result events."""


@results.command()
@click.option("--from-start", is_flag=True, help="Print the stream's history first.")
@click.option("--group", help="Read in this consumer group (acks what it prints).")
@click.option("--consumer", help="Consumer name within the group (default: host-pid).")
@click.option("--count", type=int, help="Stop after this many events.")
@click.option("--redis-url", envvar="REDIS_URL", help="Redis of the workers (default: $REDIS_URL).")
def tail(
    from_start: bool,
    group: str | None,
    consumer: str | None,
    count: int | None,
    redis_url: str | None,
) -> None:
    """Print result events as JSON lines as they arrive."""
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch.results import ResultConsumer, event_json
    from order_dispatch.results import tail as follow
    from order_dispatch.settings import get_settings

    settings = get_settings()
    client = redis_client(settings, url=redis_url)
    keys = Keys(settings.key_prefix)
    printed = 0

    def done() -> bool:
        return count is not None and printed >= count

    try:
        if group:
            reader = ResultConsumer(client, group, consumer, keys=keys)

            def show(event: Any) -> None:
                nonlocal printed
                click.echo(event_json(event))
                printed += 1

            reader.run(show, stop=done)
        else:
            for delivery in follow(client, keys=keys, from_start=from_start, stop=done):
                if delivery.event is not None:
                    click.echo(event_json(delivery.event))
                    printed += 1
                    if done():
                        break
    except KeyboardInterrupt:
        pass


# Operators: dead letters, replay, resolve, timeline (order_dispatch_ops/actions.py does the work).

VENDORS = click.Choice([*known_vendors(), "webhooks"])
DEAD_STATUSES = click.Choice(DEAD_LETTER_STATUSES)


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    from order_dispatch_ops.actions import parse_since

    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _operations(redis_url: str | None, by: str | None = None) -> Operations:
    from order_dispatch_ops.actions import Operations

    return Operations.from_url(redis_url, operator=by)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """An action refused, or a corrected order or note that breaks the contract: exit 1, saying
    why."""
    from order_dispatch.contract import ValidationError, format_validation_errors
    from order_dispatch_ops.actions import OperationRefused
    from producers.enqueue import InvalidJob

    try:
        yield
    except OperationRefused as exc:
        raise click.ClickException(str(exc)) from None
    except InvalidJob as exc:
        for line in exc.errors:
            click.echo(f"invalid: {exc.source}: {line}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        for line in format_validation_errors(exc):
            click.echo(f"invalid: {line}", err=True)
        sys.exit(1)


_redis_option = click.option(
    "--redis-url", envvar="REDIS_URL", help="Redis of the workers (default: $REDIS_URL)."
)
_by_option = click.option("--by", help="Who is acting, for the record (default: login name).")
_note_option = click.option("--note", help="Why, for the record (timeline and event).")


@main.group()
def dlq() -> None:
    """Jobs waiting for a person: dead-lettered (retries exhausted) and in doubt."""


@dlq.command("list")
@click.option("--vendor", type=VENDORS, help="Only this vendor's jobs.")
@click.option("--since", callback=_since, help="Only since then: ISO time or 30m, 2h, 7d.")
@click.option("--status", type=DEAD_STATUSES, help="Only jobs with this status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_redis_option
def dlq_list(
    vendor: str | None,
    since: datetime | None,
    status: Any,
    as_json: bool,
    redis_url: str | None,
) -> None:
    """List dead-lettered and in-doubt jobs, oldest first, with why they are there."""
    from order_dispatch_cli.operations import dead_letters_table

    dead = _operations(redis_url).dead_letters(vendor=vendor, since=since, status=status)
    if as_json:
        for d in dead:
            click.echo(json.dumps(d.as_json(), separators=(",", ":")))
    elif dead:
        click.echo(dead_letters_table(dead))
        click.echo(f"{len(dead)} job{'s' if len(dead) != 1 else ''}")
    else:
        click.echo("no jobs in the dead letters match")


@main.group()
def quarantine() -> None:
    """Messages the workers could not read or run, kept with the reason (never retried)."""


def _quarantine(redis_url: str | None) -> Any:
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch.settings import get_settings
    from worker.quarantine import Quarantine

    settings = get_settings()
    return Quarantine(redis_client(settings, url=redis_url), Keys(settings.key_prefix))


@contextlib.contextmanager
def _entry_refusals(entry_id: str) -> Iterator[None]:
    import redis

    from worker.quarantine import QuarantineError

    try:
        yield
    except QuarantineError as exc:
        raise click.ClickException(str(exc)) from None
    except redis.ResponseError as exc:
        if "Invalid stream ID" in str(exc):
            raise click.ClickException(
                f"{entry_id!r} is not a quarantine entry id (like 1733480000000-0; "
                "`order-dispatch quarantine list` shows them)"
            ) from None
        raise


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (no message).")
@_redis_option
def quarantine_list(as_json: bool, redis_url: str | None) -> None:
    """List the quarantined messages, oldest first, with why each is there."""
    entries = _quarantine(redis_url).entries()
    if as_json:
        for e in entries:
            click.echo(json.dumps(e.as_json(), separators=(",", ":")))
        return
    if not entries:
        click.echo("the quarantine is empty")
        return
    for e in entries:
        ids = e.job_id or e.task_id or "-"
        click.echo(f"{e.entry_id}  {e.at:%Y-%m-%d %H:%M:%S}  {e.queue or '-'}  {ids}  {e.reason}")
    click.echo(f"{len(entries)} message{'s' if len(entries) != 1 else ''}")


@quarantine.command("show")
@click.argument("entry_id", metavar="ID")
@_redis_option
def quarantine_show(entry_id: str, redis_url: str | None) -> None:
    """Print quarantined message ID as JSON, the message itself included (it may carry
    customer data)."""
    with _entry_refusals(entry_id):
        found = _quarantine(redis_url).get(entry_id)
    if found is None:
        raise click.ClickException(f"no quarantined message {entry_id}")
    click.echo(json.dumps(found.as_json(raw=True), indent=2))


@quarantine.command("requeue")
@click.argument("entry_id", metavar="ID")
@_redis_option
def quarantine_requeue(entry_id: str, redis_url: str | None) -> None:
    """Send quarantined message ID back to the queue it came from, and drop the entry: for a
    message quarantined by a defect that has since been fixed. A message that still cannot be
    read or run comes back to the quarantine."""
    with _entry_refusals(entry_id):
        found = _quarantine(redis_url).requeue(entry_id)
    click.echo(f"requeued {entry_id} to {found.queue}")


@quarantine.command("delete")
@click.argument("entry_id", metavar="ID")
@_redis_option
def quarantine_delete(entry_id: str, redis_url: str | None) -> None:
    """Drop quarantined message ID for good."""
    with _entry_refusals(entry_id):
        deleted = _quarantine(redis_url).delete(entry_id)
    if not deleted:
        raise click.ClickException(f"no quarantined message {entry_id}")
    click.echo(f"deleted {entry_id}")


@main.command()
@click.argument("job_id", metavar="JOB", required=False)
@click.option("--order", type=click.File("r"), help="A corrected order (or whole job), JSON.")
@click.option("--vendor", type=VENDORS, help="Replay many: this vendor's dead letters.")
@click.option("--since", callback=_since, help="Replay many: those since then (ISO time or 2h).")
@click.option("--status", type=DEAD_STATUSES, help="Replay many: with this status.")
@_note_option
@_by_option
@_redis_option
def replay(
    job_id: str | None,
    order: Any,
    vendor: str | None,
    since: datetime | None,
    status: Any,
    note: str | None,
    by: str | None,
    redis_url: str | None,
) -> None:
    """Start a new run of JOB (dead-lettered, in doubt or rejected), with --order's corrected
    order in place of the stored one if given; or of every dead letter since --since
    (dead-lettered only unless --status says otherwise), optionally of one --vendor.

    The run's messages go on the vendor's queue; the old run keeps its terminal event, the new
    one gets its own. Refused while the job's run has not ended, and for an accepted job.
    """
    many = vendor is not None or since is not None or status is not None
    if job_id is not None and many:
        raise click.UsageError("give a JOB, or --vendor/--since/--status to replay many, not both")
    if job_id is None and since is None:
        raise click.UsageError("give a JOB, or --since (with --vendor, --status) to replay many")
    if job_id is None and order is not None:
        raise click.UsageError("--order corrects one JOB; it cannot go with --since")
    ops = _operations(redis_url, by)
    if job_id is not None:
        data = None
        if order is not None:
            try:
                data = json.load(order)
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{order.name}: not JSON ({exc})") from None
        with _refusals():
            event = ops.replay(job_id, order=data, note=note)
        click.echo(f"replayed {job_id}: run {event.run} queued")
        return
    refused = 0
    done = ops.replay_many(vendor=vendor, since=since, status=status or "dead_lettered", note=note)
    for replayed_id, result in done:
        if isinstance(result, Exception):
            refused += 1
            click.echo(f"refused {replayed_id}: {result}", err=True)
        else:
            click.echo(f"replayed {replayed_id}: run {result.run} queued")
    click.echo(f"replayed {len(done) - refused}, refused {refused}")
    if refused:
        sys.exit(1)


@main.command()
@click.argument("job_id", metavar="JOB")
@click.option(
    "--as",
    "outcome",
    required=True,
    type=click.Choice(["accepted", "rejected"]),
    help="What the vendor did with the order, as you found out.",
)
@click.option("--vendor-order-id", help="The vendor's order id (with --as accepted).")
@_note_option
@_by_option
@_redis_option
def resolve(
    job_id: str,
    outcome: Any,
    vendor_order_id: str | None,
    note: str | None,
    by: str | None,
    redis_url: str | None,
) -> None:
    """Decide an in-doubt JOB by hand: the vendor has the order (accepted) or not (rejected).

    The decision is the terminal event of the job's next run, marked with who decided and the
    note; nothing is sent to the vendor. To send it again instead, use replay.
    """
    with _refusals():
        event = _operations(redis_url, by).resolve(
            job_id, outcome, vendor_order_id=vendor_order_id, note=note
        )
    click.echo(f"resolved {job_id}: {event.status.value} in run {event.run}")


@main.command()
@click.argument("job_id", metavar="JOB")
@click.option("--json", "as_json", is_flag=True, help="The timeline as one JSON document.")
@_redis_option
def timeline(job_id: str, as_json: bool, redis_url: str | None) -> None:
    """Show JOB's history: every attempt (time, request, vendor's answer, outcome, worker) and
    every operator action."""
    from order_dispatch_cli.operations import timeline_table

    with _refusals():
        found = _operations(redis_url).timeline(job_id)
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
    else:
        click.echo(timeline_table(found))


@main.command()
@click.option("--order", "order_id", help="Every job of this order id.")
@click.option("--vendor", type=VENDORS, help="With --order: only this vendor's jobs.")
@click.option("--account", help="With --order: only this account's jobs.")
@click.option("--job", "job_id", help="This job only.")
@_note_option
@_by_option
@_redis_option
def purge(
    order_id: str | None,
    vendor: str | None,
    account: str | None,
    job_id: str | None,
    note: str | None,
    by: str | None,
    redis_url: str | None,
) -> None:
    """Remove an order's personal data on request: the job document, and the vendor's answers,
    error messages and notes kept in timelines, dead letters and result events.

    Ids and statuses stay (receipts, ledger, timeline, dead letters) as the audit trail; each
    purge writes a 'purged' result event and a timeline entry. A job whose run has not ended,
    or that is in doubt, is refused (a worker or a person still needs its order): purge it once
    it has ended, or been resolved. Exits 1 when no job is found or any is refused.
    """
    if (order_id is None) == (job_id is None):
        raise click.UsageError("give --order ID or --job JOB (one of them)")
    if job_id is not None and (vendor is not None or account is not None):
        raise click.UsageError("--vendor and --account narrow --order; --job names one job")
    from order_dispatch_ops.actions import OperationRefused

    ops = _operations(redis_url, by)
    if job_id is not None:
        with _refusals():
            click.echo(ops.purge(job_id, note=note).line())
        return
    assert order_id is not None
    found = ops.jobs_of_order(order_id, vendor=vendor, account=account)
    if not found:
        narrowed = "".join(
            f", {name} {value!r}"
            for name, value in (("vendor", vendor), ("account", account))
            if value is not None
        )
        raise click.ClickException(
            f"no job for order {order_id!r}{narrowed} in the job store or the dead letters"
        )
    refused = 0
    for found_id in found:
        try:
            click.echo(ops.purge(found_id, note=note).line())
        except OperationRefused as exc:
            refused += 1
            click.echo(f"refused {found_id}: {exc}", err=True)
    if refused:
        sys.exit(1)


EX_CONFIG = 78


def _settings_or_exit() -> Any:
    """The settings, or exit 78 saying which one is wrong."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from order_dispatch.settings import get_settings
    from order_dispatch_cli.errors import describe

    try:
        return get_settings()
    except (ValidationError, SettingsError) as exc:
        click.echo(f"error: {describe(exc) or exc}", err=True)
        sys.exit(EX_CONFIG)


@main.command()
@click.option(
    "--host", envvar="ORDER_DISPATCH_API_HOST", default="127.0.0.1", show_default=True,
    help="Listen address; anything but loopback needs an API key (api-keys create).",
)
@click.option(
    "--port", envvar="ORDER_DISPATCH_API_PORT", default=8700, show_default=True,
    type=click.IntRange(0, 65535),
)
@click.option(
    "--workers", envvar="ORDER_DISPATCH_API_WORKERS", default=1, show_default=True,
    type=click.IntRange(min=1), help="API processes (each serves requests on its event loop).",
)
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API on http://HOST:PORT: enqueue jobs (POST /v1/jobs, /v1/jobs/batch),
    look them up (GET /v1/jobs/ID, /v1/jobs/ID/timeline), follow result events (GET
    /v1/events); OpenAPI at /openapi.json, interactive docs at /docs; the operator console
    at /console/ (log in with a key that has the read or operate scope).

    Clients send an API key as 'Authorization: Bearer <key>' (see api-keys). Exit status: 0
    after a requested stop, 78 for a configuration it refuses (bad settings; an address other
    machines reach while no API key exists), 3 when Redis does not answer.
    """
    _settings_or_exit()
    from order_dispatch_api.server import ConfigurationError, serve

    try:
        serve(host, port, workers)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EX_CONFIG)


@main.group("api-keys")
def api_keys() -> None:
    """Keys of the HTTP API: shown once at creation, stored as a SHA-256 digest."""


def _key_store(redis_url: str | None) -> Any:
    from order_dispatch.keys import Keys
    from order_dispatch.redis_client import redis_client
    from order_dispatch_api.keystore import KeyStore

    settings = _settings_or_exit()
    client = redis_client(settings, url=redis_url)
    return KeyStore(client, Keys(settings.key_prefix))


@api_keys.command("create")
@click.option("--name", required=True, help="Who or what uses the key (shown by list).")
@click.option(
    "--scope", "scopes", required=True,
    help="Comma-separated: enqueue, read, read:orders (read plus the orders' personal data), "
    "operate.",
)
@click.option(
    "--rate-per-minute", type=float,
    help="Requests a minute for this key (default: setting api.rate_limit_per_minute).",
)
@_redis_option
def api_keys_create(
    name: str, scopes: str, rate_per_minute: float | None, redis_url: str | None
) -> None:
    """Create a key and print it, once: it is stored only as a digest."""
    from order_dispatch_api.keystore import parse_scopes

    try:
        granted = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    store = _key_store(redis_url)
    rate = rate_per_minute or _settings_or_exit().api.rate_limit_per_minute
    try:
        token, record = store.create(name, granted, rate)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    shown = ",".join(sorted(granted))
    click.echo(f"created key {record.key_id} ({record.name}: {shown})", err=True)
    click.echo("store it now; it is not shown again:", err=True)
    click.echo(token)


@api_keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_redis_option
def api_keys_list(as_json: bool, redis_url: str | None) -> None:
    """List keys: id, name, scopes, rate limit, created, revoked (never the keys)."""
    found = _key_store(redis_url).list()
    for key in found:
        if as_json:
            click.echo(json.dumps(key.as_json(), separators=(",", ":")))
        else:
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            scopes = ",".join(sorted(s.value for s in key.scopes))
            click.echo(
                f"{key.key_id}  {key.name}  {scopes}  {key.rate_per_minute:g}/min  "
                f"created {key.created_at:%Y-%m-%d %H:%M}  {state}"
            )
    if not found and not as_json:
        click.echo("no API keys")


@api_keys.command("revoke")
@click.argument("key_id", metavar="KEY_ID")
@_redis_option
def api_keys_revoke(key_id: str, redis_url: str | None) -> None:
    """Revoke KEY_ID (as list shows it): refused from its next request on."""
    try:
        key = _key_store(redis_url).revoke(key_id)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    click.echo(f"revoked {key.key_id} ({key.name})")


@main.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for results.")
def demo(timeout: float) -> None:
    """End to end: Redis (embedded unless REDIS_URL is set), the sandbox, a worker, sample
    orders, and their result events. Exits 0 when every sample order ended."""
    from order_dispatch_cli.demo import run_demo

    sys.exit(run_demo(timeout=timeout))



@main.command()
@click.option("--orders", default=2000, show_default=True, help="Orders in each burst.")
@click.option("--latency-ms", default=50.0, show_default=True, help="The sandbox's latency.")
@click.option("--offered", default=300.0, show_default=True, help="Orders/s for the latencies.")
@click.option("--repeat", default=3, show_default=True, help="Runs of each; medians reported.")
@click.option(
    "--processes", default=0, type=click.IntRange(min=0),
    help="Product worker processes (default: the worker's own, one per core).",
)
@click.option(
    "--in-flight", default=1000, show_default=True, type=click.IntRange(min=0),
    help="Orders held in flight by one worker process for its memory (0: skip).",
)
@click.option(
    "--slow-ms", default=1000.0, show_default=True, type=click.FloatRange(min=0),
    help="Vendor latency of the slow-vendor run: 1,000 orders through the default worker, "
    "timed to the last terminal event (0: skip).",
)
@click.option("--sweep", is_flag=True, help="Also sweep latency, processes, events, threads.")
@click.option("--quick", is_flag=True, help="One short run of each (a smoke test).")
@click.option(
    "--api", "api_only", is_flag=True,
    help="Measure the HTTP API instead: POST /v1/jobs and /v1/jobs/batch against Producer.",
)
@click.option(
    "--api-workers", default=2, show_default=True, type=click.IntRange(min=1),
    help="With --api: API processes.",
)
@click.option(
    "--webhooks", "webhooks_", is_flag=True,
    help="Instead: dispatch beside signed webhook deliveries of every accepted event to local "
    "endpoints answering in 50 ms (events/s next to orders/s, in the same run).",
)
@click.option(
    "--endpoints", default=2, show_default=True, type=click.IntRange(min=1),
    help="Webhook endpoints for --webhooks.",
)
@click.option(
    "--out", default="bench-results", show_default=True, type=click.Path(path_type=Path),
    help="Directory for results.json, results.md and results.png.",
)
def bench(
    orders: int, latency_ms: float, offered: float, repeat: int, processes: int,
    in_flight: int, slow_ms: float, sweep: bool, quick: bool, api_only: bool, api_workers: int,
    webhooks_: bool, endpoints: int,
    out: Path,
) -> None:
    """Throughput and latency of the product against Celery's defaults and a no-queue ceiling,
    all on this machine (Redis embedded unless REDIS_URL is set, the sandbox at a fixed
    latency). Prints and writes a Markdown table and JSON.

    With --api: the HTTP API's intake (single-job POSTs over keep-alive, their latency at
    750 jobs/s offered, batches) beside Producer.enqueue and enqueue_many from Python."""
    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "benchmarks" / "harness.py").is_file():
        raise click.ClickException(
            "the benchmark ships with the repository, not the package: run it from a checkout "
            "(make bench)"
        )
    sys.path.insert(0, str(checkout))
    if api_only:
        from benchmarks import api_bench

        api_options = api_bench.ApiOptions(workers=api_workers)
        if quick:
            api_options = replace(
                api_options, single_jobs=300, offered=100.0, offered_s=1.0, batch_jobs=1000,
                floor_jobs=500,
            )
        found = api_bench.run_api(api_options, say=lambda line: click.echo(line, err=True))
        out.mkdir(parents=True, exist_ok=True)
        (out / "api-results.json").write_text(json.dumps(found, indent=2) + "\n")
        table = api_bench.markdown(found)
        (out / "api-results.md").write_text(table)
        click.echo(table)
        return
    try:
        from benchmarks.harness import Options, markdown, run
    except ImportError as exc:
        raise click.ClickException(
            f"bench needs the 'bench' extra (pip install 'order-dispatch[bench]'): {exc}"
        ) from None
    options = Options(
        orders=orders, latency_ms=latency_ms, offered=offered, repeat=repeat,
        processes=processes, in_flight=in_flight, slow_latency_ms=slow_ms, sweep=sweep,
        out=out, webhooks=endpoints if webhooks_ else 0,
    )
    if quick:
        options = replace(
            options, repeat=1, baseline_orders=min(orders, 50), offered_s=0.5,
            offered=min(offered, 100.0), enqueue_jobs=500, plot=False,
            in_flight=min(in_flight, 100), slow_orders=100,
        )
    results = run(options, say=lambda line: click.echo(line, err=True))
    click.echo(markdown(results))


main.add_command(webhooks)


if __name__ == "__main__":
    main()
