"""The operator console in a real browser: headless Chromium (Debian's) driven by Playwright,
against the console served over HTTP, a real Celery worker, the vendor sandbox and real Redis.

A few purposeful tests (the machine is small): fix-and-replay end to end, the other actions
(resolve, purge, requeue), and the refusals. Each page's screenshot is saved under
``build/console-screenshots/`` (the README's come from there, into ``docs/img/``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.keys import Keys
from producers.enqueue import Producer
from tests.integration.api.conftest import ApiProcess
from tests.integration.conftest import ROOT, Events, WorkerProcess, order_job, unique
from tests.integration.console_support import ApiKeys, browser, console_server
from tests.integration.test_operator_commands import wait_run_ends

pytestmark = pytest.mark.integration

SHOTS = ROOT / "build" / "console-screenshots"
MARKUP = (
    '<script>window.__pwned = 1</script><b id="injected">bold</b> no such street: 1725 Slough Ave'
)


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"odc-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def console_worker(
    prefix: str, worker_env_factory: Callable[..., dict[str, str]]
) -> Iterator[WorkerProcess]:
    """A worker of this module's own: its vendor fails on purpose, so its circuit stays shut."""
    proc = WorkerProcess(
        worker_env_factory(prefix, ORDER_DISPATCH_CIRCUIT__FAILURE_THRESHOLD="1000"),
        concurrency=2,
    )
    yield proc
    proc.close()


@pytest.fixture(scope="module")
def api_keys(redis_url: str, prefix: str) -> Iterator[ApiKeys]:
    client = redis.Redis.from_url(redis_url)
    yield ApiKeys(client, prefix)
    client.close()


@pytest.fixture(scope="module")
def operator_key(api_keys: ApiKeys) -> str:
    return api_keys.add("pam", "read", "read:orders", "operate")


@pytest.fixture(scope="module")
def reader_key(api_keys: ApiKeys) -> str:
    return api_keys.add("dwight", "read")


@pytest.fixture(scope="module")
def console_api(redis_url: str, prefix: str) -> Iterator[ApiProcess]:
    with console_server(redis_url, prefix) as proc:
        yield proc


@pytest.fixture(scope="module")
def console_url(console_api: ApiProcess) -> str:
    return console_api.url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as b:
        yield b


@pytest.fixture
def producer(redis_client: redis.Redis, prefix: str) -> Producer:
    return Producer(redis_client, key_prefix=prefix)


@pytest.fixture
def events(redis_client: redis.Redis, prefix: str) -> Events:
    return Events(redis_client, Keys(prefix))


def logged_in(chromium: Any, url: str, key: str) -> Any:
    """A new browser page, logged in with ``key``."""
    page = chromium.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{url}/console/")
    assert page.url.endswith("/console/login")
    shot(page, "login")
    page.fill("#key", key)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{url}/console/")
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_job(page: Any, url: str, order_id: str) -> None:
    """Find the order in "needs a person" and open its job page, as an operator would."""
    page.goto(f"{url}/console/needs")
    page.click(f"a:text-is('{order_id}')")
    page.wait_for_selector("h1:has-text('Order')")


def status_becomes(page: Any, want: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while page.inner_text("#job-status") != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"status {page.inner_text('#job-status')!r}, not {want!r}")
        time.sleep(0.5)
        page.reload()


def test_a_dead_lettered_order_is_fixed_in_the_editor_replayed_and_accepted(
    console_worker: WorkerProcess,
    console_api: ApiProcess,
    console_url: str,
    operator_key: str,
    chromium: Any,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    # Given: a job that used up its attempts on a failing vendor (the sandbox's faults)
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"fail_next": 5, "status": 500})
    job = order_job(unique("fix"))
    order_id = job["order"]["order_id"]
    job_id = producer.enqueue(job).job_id
    assert wait_run_ends(events, job_id, 1).status == "dead_lettered"

    # When: an operator logs in and finds it
    page = logged_in(chromium, console_url, operator_key)
    page.wait_for_selector("table.overview")
    shot(page, "overview")
    page.goto(f"{console_url}/console/needs")
    shot(page, "needs")
    open_job(page, console_url, order_id)
    assert page.inner_text("#job-status") == "dead_lettered"
    assert "The service is unavailable" in page.inner_text("table.timeline")
    shot(page, "job-dead-lettered")

    # And: corrects its order, first with a wrong country
    page.click("text=Correct the order and replay")
    page.fill("input[name='order.ship_to.country']", "USA")
    page.click("button:has-text('Check and replay')")
    beside = page.locator(".field.invalid:has(input[name='order.ship_to.country']) .field-error")
    assert "should match pattern" in beside.inner_text()
    assert page.locator(".field.invalid").count() == 1
    shot(page, "editor-error")
    assert [e.run for e in events.of(job_id)] == [1] * 5  # nothing was replayed

    # Then: with a valid fix, it replays and a real worker gets it accepted
    page.fill("input[name='order.ship_to.country']", "US")
    page.fill("input[name='order.ship_to.line1']", "1725 Slough Ave, Suite 200")
    page.fill("input[name='note']", "added the suite")
    page.click("button:has-text('Check and replay')")
    page.wait_for_selector("p.done")
    status_becomes(page, "accepted")
    shot(page, "job-accepted")
    history = events.of(job_id)
    replayed = [e for e in history if e.status == "replayed"]
    assert len(replayed) == 1 and replayed[0].operator == "pam"
    assert replayed[0].note == "added the suite"
    assert [e.status for e in history if e.run == 2] == ["replayed", "accepted"]
    orders = sandbox_admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()
    (sent,) = [o for o in orders["orders"] if o["shippingAddress"]["street1"].endswith("200")]
    assert sent["orderId"] == history[-1].vendor_order_id
    assert "operator pam" in page.inner_text("table.timeline")

    # And: purging the accepted order asks first, then removes its personal data
    page.click("text=Purge personal data")
    shot(page, "purge-confirm")
    assert redis_client.exists(Keys(prefix).document(job_id))
    page.fill("input[name='note']", "erasure request")
    page.click("button:has-text('Purge')")
    page.wait_for_selector("p.done")
    assert "Purged" in page.inner_text("p.done")
    assert not redis_client.exists(Keys(prefix).document(job_id))
    purged = [e for e in events.of(job_id) if e.status == "purged"]
    assert len(purged) == 1 and purged[0].operator == "pam"
    assert "No stored order" in page.inner_text("main")

    # And: the API process's log names the operator and the job, never the order's data
    log = console_api.output()
    assert "console replay" in log and "pam" in log and job_id in log
    for personal in (order_id, "pam@example.com", "Beesly", "Slough"):
        assert personal not in log


def test_an_in_doubt_job_is_resolved_and_a_quarantined_message_requeued(
    console_worker: WorkerProcess,
    console_url: str,
    operator_key: str,
    chromium: Any,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    # Given: a job whose request reached the vendor and whose answer was lost
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"drop_after_commit_next": 1})
    job = order_job(unique("doubt"))
    job_id = producer.enqueue(job).job_id
    assert wait_run_ends(events, job_id, 1).status == "in_doubt"
    (held,) = sandbox_admin.get("/_sandbox/orders", params={"vendor": "sourceorders"}).json()[
        "orders"
    ]

    # When: the operator searches for the order, checks with the vendor, resolves it as accepted
    page = logged_in(chromium, console_url, operator_key)
    page.fill("header input[name='q']", job["order"]["order_id"])
    page.click("header button:has-text('Search')")
    page.wait_for_url(f"{console_url}/console/jobs/*")
    assert job["order"]["order_id"] not in page.url  # order ids stay out of URLs
    assert page.inner_text("#job-status") == "in_doubt"
    shot(page, "job-in-doubt")
    page.check("input[value='accepted']")
    page.fill("input[name='vendor_order_id']", str(held["orderId"]))
    page.fill("form.resolve input[name='note']", "found it in the vendor's portal")
    page.click("button:has-text('Resolve')")
    page.wait_for_selector("p.done")

    # Then: run 2's terminal event is the decision, naming the operator
    assert page.inner_text("#job-status") == "accepted"
    decision = wait_run_ends(events, job_id, 2)
    assert (decision.status, decision.operator) == ("accepted", "pam")
    assert decision.vendor_order_id == str(held["orderId"])
    assert decision.note == "found it in the vendor's portal"

    # Given: a message the worker set aside
    from worker.quarantine import Quarantine

    scratch = f"{prefix}.scratch"
    raw = b'{"not": "a task message"}'
    entry = Quarantine(redis_client, Keys(prefix), worker="test").put(
        raw, queue=scratch, reason="no task name in the headers"
    )
    # When: the operator requeues it
    page.goto(f"{console_url}/console/quarantine")
    row = page.locator(f"tr[data-entry='{entry}']")
    assert "no task name in the headers" in row.inner_text()
    shot(page, "quarantine")
    row.locator("button:has-text('Requeue')").click()
    page.wait_for_selector("p.done")
    # Then: the message is back on its queue, byte for byte, and out of the quarantine
    assert redis_client.lrange(scratch, 0, -1) == [raw]
    assert redis_client.xrange(Keys(prefix).quarantine, entry, entry) == []
    assert page.locator(f"tr[data-entry='{entry}']").count() == 0


def test_refusals_no_csrf_token_a_read_key_and_a_vendor_answer_with_markup(
    console_worker: WorkerProcess,
    console_url: str,
    operator_key: str,
    reader_key: str,
    chromium: Any,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
) -> None:
    # Given: a job the vendor rejected with an answer holding markup
    sandbox_admin.post(
        "/_sandbox/faults/sourceorders", json={"fail_next": 1, "status": 400, "body": MARKUP}
    )
    job = order_job(unique("markup"))
    job_id = producer.enqueue(job).job_id
    assert wait_run_ends(events, job_id, 1).status == "rejected"

    # Then: the operator's page shows the vendor's markup as text, inert
    page = logged_in(chromium, console_url, operator_key)
    open_job(page, console_url, job["order"]["order_id"])
    shot(page, "job-rejected-markup")
    assert "<script>window.__pwned = 1</script>" in page.inner_text("table.timeline")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#injected").count() == 0

    # And: a form posted without its CSRF token is refused, and nothing happens
    refused = page.request.post(
        f"{console_url}/console/jobs/{job_id}/replay", form={"note": "no token"}
    )
    assert refused.status == 403 and "CSRF" in refused.text()
    assert [e.status for e in events.of(job_id)] == ["rejected"]

    # And: the session cookie is HttpOnly and SameSite=Strict, scoped to the console
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "od_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    # And: a read key sees the job, not its order, and cannot act even with a valid token
    reader = logged_in(chromium, console_url, reader_key)
    reader.goto(f"{console_url}/console/jobs/{job_id}")
    assert reader.inner_text("#job-status") == "rejected"
    assert reader.locator("section.actions").count() == 0
    assert "read:orders" in reader.inner_text("main")
    assert job["order"]["customer"]["email"] not in reader.content()
    # the vendor's answer quoted the street: masked (the worker masks it as it stores it)
    assert "no such street: [personal]" in reader.inner_text("table.timeline")
    assert "Slough Ave" not in reader.content()
    shot(reader, "job-read-only")
    token = reader.locator("input[name='csrf']").first.get_attribute("value")
    acted = reader.request.post(f"{console_url}/console/jobs/{job_id}/replay", form={"csrf": token})
    assert acted.status == 403 and "operate" in acted.text()
    assert [e.status for e in events.of(job_id)] == ["rejected"]


def test_a_filtered_set_is_replayed_in_bulk_once_its_count_is_confirmed(
    console_worker: WorkerProcess,
    console_url: str,
    operator_key: str,
    chromium: Any,
    producer: Producer,
    events: Events,
    sandbox_admin: httpx.Client,
    redis_client: redis.Redis,
    prefix: str,
) -> None:
    # Given: two jobs dead-lettered by a failing vendor
    sandbox_admin.post("/_sandbox/faults/sourceorders", json={"fail_next": 10, "status": 500})
    jobs = [order_job(unique("bulk")) for _ in range(2)]
    ids = [producer.enqueue(j).job_id for j in jobs]
    for job_id in ids:
        assert wait_run_ends(events, job_id, 1).status == "dead_lettered"
    keys = Keys(prefix)
    dead_lettered = [
        job_id
        for job_id in (
            j.decode() if isinstance(j, bytes) else j for j in redis_client.hkeys(keys.dead_letters)
        )
        if redis_client.hget(keys.ledger(job_id), "last_status") == b"dead_lettered"
    ]
    assert set(ids) <= set(dead_lettered)

    # Then: the overview counts them for the vendor's account (its figures are at most 5 s old)
    page = logged_in(chromium, console_url, operator_key)
    row = page.locator("table.overview tr", has=page.locator("th:text-is('sourceorders')"))
    deadline = time.monotonic() + 15
    while (cells := row.locator("td").all_inner_texts())[6] != str(len(dead_lettered)):
        assert time.monotonic() < deadline, f"the overview says {cells}"
        time.sleep(1)
        page.reload()
    assert cells[2] == "default"  # the account; cells[6] is its Dead column
    # and refreshes itself: its live part is replaced within one refresh period (10 s)
    page.evaluate("document.querySelector('#live h1').dataset.stale = 'yes'")
    deadline = time.monotonic() + 20
    while page.evaluate("document.querySelector('#live h1').dataset.stale === 'yes'"):
        assert time.monotonic() < deadline, "the overview did not refresh itself"
        time.sleep(0.5)

    # When: the operator filters the dead letters and asks to replay them
    page.goto(f"{console_url}/console/needs?vendor=sourceorders&status=dead_lettered&since=1h")
    page.click("button:has-text('Replay these')")
    # Then: the count is shown first, and nothing is replayed until it is confirmed
    heading = page.inner_text("h1")
    assert heading == f"Replay {len(dead_lettered)} jobs?"
    shot(page, "bulk-confirm")
    assert all([e.status.value for e in events.of(j)].count("replayed") == 0 for j in ids)
    csrf = page.locator("input[name='csrf']").first.get_attribute("value")
    stale = page.request.post(
        f"{console_url}/console/needs/replay",
        form={
            "csrf": str(csrf),
            "vendor": "sourceorders",
            "status": "dead_lettered",
            "since": "1h",
            "expected": "999",
            "confirm": "yes",
        },
    )
    assert stale.status == 200 and "The set changed since you counted it" in stale.text()
    assert all([e.status.value for e in events.of(j)].count("replayed") == 0 for j in ids)
    page.fill("input[name='note']", "vendor back up")
    page.click(f"button:has-text('Replay {len(dead_lettered)}')")
    page.wait_for_selector("h1:has-text('Bulk replay')")
    assert page.locator("td:text-is('replayed')").count() == len(dead_lettered)
    for job_id in ids:
        assert wait_run_ends(events, job_id, 2).status == "accepted"
        (replayed,) = [e for e in events.of(job_id) if e.status == "replayed"]
        assert (replayed.operator, replayed.note) == ("pam", "vendor back up")


def test_a_wrong_key_gets_no_session(console_url: str, operator_key: str) -> None:
    with httpx.Client(base_url=console_url) as http:
        form = http.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = http.post("/console/login", data={"csrf": token[1], "key": "odk_nope"})
        assert answer.status_code == 401
        assert "od_console=" not in answer.headers.get("set-cookie", "")
        assert http.get("/console/needs").status_code == 303  # back to the login page
        assert "script-src 'self'" in answer.headers["content-security-policy"]


def login(http: httpx.Client, key: str, **headers: str) -> httpx.Response:
    form = http.get("/console/login", headers=headers)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    # Sent by hand: over plain HTTP the client keeps back a cookie marked Secure, as it should.
    login_cookie = form.headers["set-cookie"].split(";")[0]
    return http.post(
        "/console/login",
        data={"csrf": token[1], "key": key},
        headers={**headers, "Cookie": login_cookie},
    )


def test_behind_tls_the_cookie_is_secure_and_a_revoked_key_ends_its_session(
    console_url: str, api_keys: ApiKeys
) -> None:
    key = api_keys.add("kevin", "read", "operate")
    with httpx.Client(base_url=console_url) as http:
        # A TLS-terminating proxy on this host says https (uvicorn trusts 127.0.0.1's headers)
        answer = login(http, key, **{"X-Forwarded-Proto": "https"})
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "od_console=" in cookie and "secure" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie and "max-age=" in cookie

    with httpx.Client(base_url=console_url) as http:
        plain = login(http, key)
        assert plain.status_code == 303 and "secure" not in plain.headers["set-cookie"].lower()
        assert http.get("/console/needs").status_code == 200
        api_keys.store.revoke(key)
        assert http.get("/console/needs").status_code == 303  # back to the login page


def test_with_no_key_only_this_machine_comes_in_and_as_local(redis_url: str) -> None:
    with console_server(redis_url, f"odn-{uuid.uuid4().hex[:6]}") as api:
        url = api.url
        with httpx.Client(base_url=url) as http:
            assert "No API key exists yet" in http.get("/console/login").text
            assert login(http, "").status_code == 303
            assert ">local<" in http.get("/console/").text
        with httpx.Client(base_url=url) as http:
            # Through a proxy on this host, for a client elsewhere
            away = login(http, "", **{"X-Forwarded-For": "203.0.113.7"})
            assert away.status_code == 403 and "only serves this machine" in away.text
