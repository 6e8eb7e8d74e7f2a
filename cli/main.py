"""The ``order-dispatch`` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

SCHEMAS = ("order", "job", "event")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-dispatch")
def main() -> None:
    """Dispatch normalized orders to fulfilment vendors through Celery workers."""


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


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.File("r"))
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
    """Validate and queue the jobs in FILES (JSON or JSON Lines; '-' reads stdin).

    A record with a "vendor" field is a job; any other record is an order, sent to --vendor.
    Invalid records are reported with file, line and every bad field, and never queued. Exits
    1 when any record was invalid.
    """
    from producers.enqueue import InvalidJob, Producer, validate_job
    from producers.files import as_job, read_records

    records = [
        r for f in files for r in read_records(f, "<stdin>" if f.name == "<stdin>" else f.name)
    ]
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
                batch.append(validate_job(data, source=record.where))
            except InvalidJob as exc:
                invalid.append(str(exc))
                continue
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    for line in invalid:
        click.echo(f"invalid: {line}", err=True)
    click.echo(f"queued {queued}, duplicates {duplicates}, invalid {len(invalid)}")
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
    from cli.preview import dump, job_from
    from cli.preview import preview as build
    from order_dispatch.contract import Job, ValidationError, format_validation_errors
    from order_dispatch.settings import get_settings
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
@click.option("--concurrency", "-c", type=int, help="Threads (default: settings, 32).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(vendors: str | None, concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Start a dispatch worker with the product's defaults; extra arguments go to Celery.

    Defaults: a thread pool (vendor calls are I/O-bound and share one HTTP client), one queue
    per vendor, task events on for Flower, JSON logs.

    Exit status: 0 after a requested stop (SIGTERM, SIGINT, SIGQUIT), 78 when the worker refuses
    its configuration (a Redis without append-only persistence, wrong account settings), and
    another non-zero status when it stopped by itself (1 after an unrecoverable error).
    """
    from order_dispatch.settings import get_settings
    from worker.app import app
    from worker.shutdown import exit_status
    from worker.vendors import known_vendors

    settings = get_settings()
    names = [v.strip() for v in vendors.split(",")] if vendors else known_vendors()
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
        "--task-events",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        settings.log_level,
        *celery_args,
    ]
    # app.start (and worker_main) return None whatever the worker's exit status was.
    app.start(argv)
    sys.exit(exit_status())


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
def sandbox(host: str, port: int, settings: tuple[str, ...], faults: str | None) -> None:
    """Serve the vendor simulators (and the /_sandbox/ admin API) on HOST:PORT.

    Each vendor answers under its own prefix, e.g. http://HOST:PORT/sourceorders/v1/orders.
    Simulator settings (credentials, switches) come from --set, else from
    ORDER_DISPATCH_SANDBOX_<VENDOR>_<NAME> variables, else their demo defaults.
    """
    from sandbox.app import serve

    for item in settings:
        name, sep, value = item.partition("=")
        vendor, dot, key = name.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{item!r} is not VENDOR.NAME=VALUE", param_hint="--set")
        os.environ[f"ORDER_DISPATCH_SANDBOX_{vendor.upper()}_{key.upper()}"] = value
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
    import redis

    from order_dispatch.keys import Keys
    from order_dispatch.results import ResultConsumer, event_json
    from order_dispatch.results import tail as follow
    from order_dispatch.settings import get_settings

    settings = get_settings()
    client = redis.Redis.from_url(redis_url or settings.redis_url)
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


@main.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for results.")
def demo(timeout: float) -> None:
    """End to end: Redis (embedded unless REDIS_URL is set), the sandbox, a worker, sample
    orders, and their result events. Exits 0 when every sample order ended."""
    from cli.demo import run_demo

    sys.exit(run_demo(timeout=timeout))


if __name__ == "__main__":
    main()
