"""The sandbox itself: GHL's rules, seeded data, rate limits, faults, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tap_ghl_contacts.sandbox import Account, RateLimits, SandboxAPI, SandboxServer
from tap_ghl_contacts.sandbox.api import RateLimiter
from tap_ghl_contacts.sandbox.server import SandboxState, build_persistent_api, parse_fault

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONTACTS_VERSION = {"Version": "2021-07-28"}
RATE_HEADERS = {
    "X-RateLimit-Limit-Daily",
    "X-RateLimit-Daily-Remaining",
    "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max",
    "X-RateLimit-Remaining",
}


@pytest.fixture(scope="module")
def seeded() -> SandboxAPI:
    return SandboxAPI(Account.seeded(1200, seed=3), rate_limits=RateLimits(burst=100_000))


@pytest.fixture(scope="module")
def live(seeded: SandboxAPI) -> Iterator[tuple[SandboxAPI, str]]:
    with SandboxServer(seeded) as server:
        yield seeded, server.url


def call(url: str, sandbox: SandboxAPI, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {
        "Authorization": f"Bearer {sandbox.credentials.pit}",
        **CONTACTS_VERSION,
        **kwargs.pop("headers", {}),
    }
    return requests.request(method, url + path, headers=headers, timeout=10, **kwargs)


def search(url: str, sandbox: SandboxAPI, **body: Any) -> requests.Response:
    return call(url, sandbox, "POST", "/contacts/search", json={"locationId": sandbox.location_id, **body})


def test_seeded_data_is_deterministic_and_messy() -> None:
    first, again = Account.seeded(3000, seed=11), Account.seeded(3000, seed=11)
    assert first.truth() == again.truth()
    assert first.contacts == again.contacts
    contacts = list(first.contacts.values())
    assert any(c["email"] is None for c in contacts)
    assert any(c["firstNameLowerCase"] and not c["firstNameLowerCase"].isascii() for c in contacts)
    assert (
        Counter(c["dateUpdated"] for c in contacts).most_common(1)[0][1] >= 100
    )  # many share one dateUpdated
    values = [f["value"] for c in contacts for f in c["customFields"]]
    assert {type(v) for v in values} >= {str, int, float, list, type(None)}
    children = [len(first.notes[c["id"]]) + len(first.tasks[c["id"]]) for c in contacts]
    assert children.count(0) > 300
    assert max(children) >= 400  # a few contacts with hundreds


def test_every_response_carries_the_rate_limit_headers(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    for response in (search(url, sandbox, pageLimit=5), call(url, sandbox, "GET", "/contacts/nope/notes")):
        assert set(response.headers) >= RATE_HEADERS


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"pageLimit": 501}, 422, "pageLimit"),
        ({}, 422, "pageLimit"),
        ({"pageLimit": 10, "page": 2, "searchAfter": [1, "x"]}, 422, "together"),
        ({"pageLimit": 500, "page": 21}, 422, "10000"),
        ({"pageLimit": 10, "locationId": "another-location"}, 403, "does not have access"),
    ],
)
def test_search_enforces_ghl_rules(
    live: tuple[SandboxAPI, str], body: dict[str, Any], status: int, words: str
) -> None:
    sandbox, url = live
    response = search(url, sandbox, **body)
    assert response.status_code == status
    assert words in response.text
    assert response.json()["statusCode"] == status


def test_search_after_pages_through_everything_in_order(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    seen: list[str] = []
    body: dict[str, Any] = {"pageLimit": 100, "sort": [{"field": "dateUpdated", "direction": "asc"}]}
    while True:
        rows = search(url, sandbox, **body).json()["contacts"]
        if not rows:
            break
        assert all("searchAfter" in r for r in rows)
        seen.extend(r["id"] for r in rows)
        body["searchAfter"] = rows[-1]["searchAfter"]
    assert sorted(seen) == sorted(sandbox.account.contacts)
    assert len(seen) == len(set(seen))


def test_range_filter_and_descending_sort(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    pivot = sorted(c["dateUpdated"] for c in sandbox.account.contacts.values())[600]
    body = {
        "pageLimit": 500,
        "filters": [{"field": "dateUpdated", "operator": "range", "value": {"gte": pivot}}],
        "sort": [{"field": "dateUpdated", "direction": "desc"}],
    }
    reply = search(url, sandbox, **body).json()
    expected = sum(c["dateUpdated"] >= pivot for c in sandbox.account.contacts.values())
    assert reply["total"] == expected
    stamps = [r["dateUpdated"] for r in reply["contacts"]]
    assert stamps == sorted(stamps, reverse=True)
    assert min(stamps) >= pivot


def test_headers_and_tokens_are_checked(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    assert (
        call(
            url,
            sandbox,
            "GET",
            "/calendars/",
            params={"locationId": sandbox.location_id},
            headers={"Version": ""},
        ).status_code
        == 400
    )
    assert (
        call(
            url,
            sandbox,
            "GET",
            "/calendars/",
            params={"locationId": sandbox.location_id},
            headers={"Authorization": "Bearer pit-wrong"},
        ).status_code
        == 401
    )
    assert call(url, sandbox, "GET", "/calendars/", params={"locationId": "elsewhere"}).status_code == 403
    assert call(url, sandbox, "GET", "/locations/elsewhere/tags").status_code == 403


def test_location_wide_endpoints(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    location = sandbox.location_id
    calendars = call(url, sandbox, "GET", "/calendars/", params={"locationId": location}).json()["calendars"]
    assert {c["id"] for c in calendars} == {"cal-sales", "cal-support", "cal-demo"}
    everything = {"locationId": location, "startTime": "0", "endTime": str(4102444800000)}
    events = [
        e
        for cal in calendars
        for e in call(
            url,
            sandbox,
            "GET",
            "/calendars/events",
            params={**everything, "calendarId": cal["id"]},
            headers={"Version": "2021-04-15"},
        ).json()["events"]
    ]
    assert sorted(e["id"] for e in events) == sandbox.account.truth()["appointments"]
    assert all(e["startTime"].endswith("+00:00") for e in events)
    assert (
        call(url, sandbox, "GET", "/calendars/events", params=everything).status_code == 422
    )  # no calendar, user or group
    tasks: list[dict[str, Any]] = []
    while page := call(
        url, sandbox, "POST", f"/locations/{location}/tasks/search", json={"limit": 100, "skip": len(tasks)}
    ).json()["tasks"]:
        tasks.extend(page)
    assert sorted(t["id"] for t in tasks) == sandbox.account.truth()["tasks"]
    assert all(t["contactId"] for t in tasks)
    assert call(url, sandbox, "GET", f"/locations/{location}/customFields").json()["customFields"]
    assert call(url, sandbox, "GET", f"/locations/{location}/tags").json()["tags"]


def test_refresh_tokens_are_single_use(live: tuple[SandboxAPI, str]) -> None:
    sandbox, url = live
    form = {
        "client_id": sandbox.credentials.client_id,
        "client_secret": sandbox.credentials.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": sandbox.issue_refresh_token(),
        "user_type": "Location",
    }
    first = requests.post(f"{url}/oauth/token", data=form, timeout=10)
    assert first.status_code == 200
    again = requests.post(f"{url}/oauth/token", data=form, timeout=10)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    token = first.json()["access_token"]
    ok = requests.get(
        f"{url}/calendars/",
        params={"locationId": sandbox.location_id},
        headers={"Authorization": f"Bearer {token}", "Version": "2021-04-15"},
        timeout=10,
    )
    assert ok.status_code == 200


def test_rate_limiter_counts_a_sliding_window_and_a_daily_quota() -> None:
    now = [0.0]
    limiter = RateLimiter(
        RateLimits(burst=3, interval_ms=1000, daily=5, send_retry_after=True), clock=lambda: now[0]
    )
    outcomes = []
    for moment in (0.0, 0.1, 0.2, 0.3, 1.05, 1.25, 5.0, 9.0):
        now[0] = moment
        allowed, headers = limiter.take("app")
        outcomes.append((allowed, headers["X-RateLimit-Remaining"], headers["X-RateLimit-Daily-Remaining"]))
    assert outcomes == [
        (True, "2", "4"),
        (True, "1", "3"),
        (True, "0", "2"),
        (False, "0", "2"),  # fourth inside one second
        (True, "0", "1"),  # the first left the window
        (True, "1", "0"),  # 0.2 left it too
        (False, "3", "0"),  # daily quota spent, though the window is empty
        (False, "3", "0"),
    ]
    now[0] = 0.35
    fresh = RateLimiter(RateLimits(burst=1, interval_ms=1000, send_retry_after=True), clock=lambda: now[0])
    fresh.take("a")
    allowed, headers = fresh.take("a")
    assert not allowed
    assert headers["Retry-After"] == "1"


def test_a_burst_beyond_the_limit_gets_429_with_a_ghl_body() -> None:
    sandbox = SandboxAPI(Account.seeded(5), rate_limits=RateLimits(burst=3))
    with SandboxServer(sandbox) as server:
        statuses = [search(server.url, sandbox, pageLimit=1) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert statuses[-1].json()["statusCode"] == 429
    assert statuses[-1].headers["X-RateLimit-Remaining"] == "0"
    assert sandbox.limiter.rejected == 2


def test_injected_faults_reach_the_wire() -> None:
    sandbox = SandboxAPI(Account.seeded(5), rate_limits=RateLimits(enabled=False))
    with SandboxServer(sandbox) as server:
        sandbox.inject("reset")
        with pytest.raises(requests.ConnectionError):
            search(server.url, sandbox, pageLimit=1)
        sandbox.inject("html", path="/contacts/search", after=1)
        assert search(server.url, sandbox, pageLimit=1).status_code == 200
        page = search(server.url, sandbox, pageLimit=1)
        assert (page.status_code, page.headers["Content-Type"].split(";")[0]) == (502, "text/html")
        sandbox.inject("truncate")
        with pytest.raises(ValueError, match=r".+"):
            search(server.url, sandbox, pageLimit=1).json()
        sandbox.inject("slow", seconds=0.3)
        started = time.monotonic()
        assert search(server.url, sandbox, pageLimit=1).status_code == 200
        assert time.monotonic() - started >= 0.3
        sandbox.inject("503", times=2)
        assert [search(server.url, sandbox, pageLimit=1).status_code for _ in range(3)] == [503, 503, 200]


def test_a_revoke_fault_invalidates_access_tokens_mid_run() -> None:
    sandbox = SandboxAPI(Account.seeded(5), rate_limits=RateLimits(enabled=False))
    grant = sandbox.handle(
        "POST",
        "/oauth/token",
        {},
        {},
        (
            f"client_id={sandbox.credentials.client_id}&client_secret={sandbox.credentials.client_secret}"
            f"&grant_type=refresh_token&refresh_token={sandbox.issue_refresh_token()}"
        ).encode(),
    ).body
    headers = {"Authorization": f"Bearer {grant['access_token']}", **CONTACTS_VERSION}
    body = json.dumps({"locationId": sandbox.location_id, "pageLimit": 1}).encode()
    sandbox.inject("revoke", after=1)
    assert sandbox.handle("POST", "/contacts/search", headers, {}, body).status == 200
    assert sandbox.handle("POST", "/contacts/search", headers, {}, body).status == 401


def test_changes_between_runs_show_in_the_truth() -> None:
    account = Account.seeded(400, seed=5)
    before = account.truth()
    changes = account.mutate(random.Random(1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), scale=0.05)
    after = account.truth()
    assert len(changes["updated"]) == 20
    assert all(account.contacts[c]["dateUpdated"].startswith("2026-01-01") for c in changes["updated"])
    assert set(after["contacts"]) == set(before["contacts"]) - set(changes["deleted"]) | set(changes["added"])
    assert set(changes["notes_added"]) <= set(after["notes"])


def test_state_persists_rounds_and_tokens(tmp_path: Path) -> None:
    state = SandboxState(tmp_path / "state.json")
    api, changes, first_token = build_persistent_api(
        state, contacts=200, seed=4, mutate=True, rate_limits=RateLimits(), latency=0
    )
    assert changes == {}  # nothing to change on the very first start
    spent = api.handle(
        "POST",
        "/oauth/token",
        {},
        {},
        (
            f"client_id={api.credentials.client_id}&client_secret={api.credentials.client_secret}"
            f"&grant_type=refresh_token&refresh_token={first_token}"
        ).encode(),
    ).body["refresh_token"]
    again, changes, same_first = build_persistent_api(
        state, contacts=200, seed=4, mutate=True, rate_limits=RateLimits(), latency=0
    )
    assert same_first == first_token
    assert spent in again.refresh_tokens  # the rotated token survives a restart
    assert first_token not in again.refresh_tokens
    assert changes["updated"]
    third, _, _ = build_persistent_api(
        state, contacts=200, seed=4, mutate=False, rate_limits=RateLimits(), latency=0
    )
    assert third.account.truth() == again.account.truth()  # the rounds replay identically


def test_parse_fault_specs() -> None:
    assert parse_fault("502") == {"kind": "502"}
    assert parse_fault("reset:/contacts/search:3:all") == {
        "kind": "reset",
        "path": "/contacts/search",
        "after": 3,
        "times": None,
    }


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_ghl_contacts.sandbox",
            "--contacts",
            "30",
            "--credentials-file",
            str(credentials),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not credentials.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        config = json.loads(credentials.read_text())
        truth = requests.get(config["api_url"] + "/_sandbox/truth", timeout=10).json()
        assert len(truth["contacts"]) == 30
        assert config["api_url"].startswith("http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_the_sandbox_refuses_non_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(SandboxAPI(Account()), host="0.0.0.0")  # noqa: S104


def test_a_slow_fault_only_delays_and_keeps_tokens_valid() -> None:
    sandbox = SandboxAPI(Account.seeded(3), rate_limits=RateLimits(enabled=False))
    grant = sandbox.handle(
        "POST",
        "/oauth/token",
        {},
        {},
        (
            f"client_id={sandbox.credentials.client_id}&client_secret={sandbox.credentials.client_secret}"
            f"&grant_type=refresh_token&refresh_token={sandbox.issue_refresh_token()}"
        ).encode(),
    ).body
    headers = {"Authorization": f"Bearer {grant['access_token']}", **CONTACTS_VERSION}
    body = json.dumps({"locationId": sandbox.location_id, "pageLimit": 1}).encode()
    sandbox.inject("slow", seconds=0.2)
    slow = sandbox.handle("POST", "/contacts/search", headers, {}, body)
    assert (slow.status, slow.delay) == (200, 0.2)
    assert sandbox.handle("POST", "/contacts/search", headers, {}, body).status == 200
