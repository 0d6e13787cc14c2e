"""Pacing: GHL's rate limits are met, not hit; 429s are waited out; the daily reserve stops a run."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import pytest

from tap_ghl_contacts.pacing import DailyQuotaReserveError, RequestPacer
from tap_ghl_contacts.sandbox import RateLimits
from tests.helpers import pit_config, run_sync, run_sync_catching, run_tap_cli, selecting, write_config
from tests.sandboxes import sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI


def test_the_ceiling_spaces_requests_over_the_interval() -> None:
    pacer = RequestPacer(ceiling=5)
    pacer.interval = 0.5
    started = time.monotonic()
    for _ in range(12):
        pacer.acquire()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.5  # 12 requests at 5 per 0.5 s need two full intervals


def test_headers_lower_the_ceiling_and_set_the_interval() -> None:
    pacer = RequestPacer(ceiling=95)
    pacer.observe(
        {"X-RateLimit-Max": "25", "X-RateLimit-Interval-Milliseconds": "2000", "X-RateLimit-Remaining": "24"},
        0.0,
    )
    assert (pacer.ceiling, pacer.interval) == (23, 2.0)


def test_ghls_remaining_is_trusted_when_lower() -> None:
    pacer = RequestPacer(ceiling=95)
    pacer.interval = 0.4
    pacer.observe({"X-RateLimit-Remaining": "0"}, pacer.now())  # someone else used the budget
    started = time.monotonic()
    pacer.acquire()
    assert time.monotonic() - started >= 0.35


def test_a_hold_blocks_every_thread() -> None:
    pacer = RequestPacer(ceiling=95)
    pacer.hold(0.3)
    done: list[float] = []
    started = time.monotonic()

    def send() -> None:
        pacer.acquire()
        done.append(time.monotonic())

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(done) - started >= 0.28
    assert pacer.rate_limited == 1


def test_the_daily_reserve_stops_before_the_next_request() -> None:
    pacer = RequestPacer(ceiling=95, daily_reserve=10)
    pacer.observe({"X-RateLimit-Daily-Remaining": "11"}, 0.0)
    pacer.acquire()
    pacer.observe({"X-RateLimit-Daily-Remaining": "10"}, 0.0)
    with pytest.raises(DailyQuotaReserveError, match="daily request quota"):
        pacer.acquire()


def test_a_paced_sync_gets_no_429_and_never_outruns_the_limit(
    serve_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(30, rate_limits=RateLimits(burst=20, interval_ms=1000))
    url = serve_sandbox(sandbox)
    started = time.monotonic()
    out = run_sync(pit_config(sandbox, url, page_size=10))
    elapsed = time.monotonic() - started
    requests_made = len(sandbox.api_calls())
    assert len(out.records("contacts")) == 30
    assert sandbox.limiter.rejected == 0
    # Never faster than 19 per second (95% of 20) after the first 19; how close to that
    # rate it gets is the benchmark's business, not a test's.
    assert elapsed >= (requests_made - 19) / 19 * 0.95


def test_429s_are_waited_out_without_spending_failure_retries(
    serve_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(5, rate_limits=RateLimits(enabled=False, interval_ms=200))  # 429s say 200 ms
    sandbox.inject("429", path="/contacts/search", times=8)  # more 429s than singer-sdk's 5 tries
    out = run_sync(pit_config(sandbox, serve_sandbox(sandbox)), catalog=selecting("contacts"))
    assert len(out.records("contacts")) == 5
    assert [r["status"] for r in sandbox.api_calls("/contacts/search")] == [429] * 8 + [200]


def test_the_cli_stops_at_the_daily_reserve_with_exit_code_3(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(40, rate_limits=RateLimits(burst=10_000, daily=60))
    config = pit_config(
        sandbox,
        serve_sandbox(sandbox),
        page_size=10,
        daily_quota_reserve=20,
        tasks_source="per_contact",
        appointments_source="per_contact",
    )
    done = run_tap_cli("--config", str(write_config(tmp_path, config)))
    assert done.returncode == 3
    assert "daily request quota" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(sandbox.api_calls()) == 40  # stopped with 20 requests left
    states = [json.loads(line)["value"] for line in done.stdout.splitlines() if '"STATE"' in line]
    assert states[-1]["bookmarks"]["contacts"]["replication_key_value"]  # resumable


def test_a_stop_at_the_reserve_resumes_without_loss(serve_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(40, rate_limits=RateLimits(burst=10_000, daily=60))
    config = pit_config(sandbox, serve_sandbox(sandbox), page_size=10, daily_quota_reserve=20)
    first, failure = run_sync_catching(config)
    assert isinstance(failure, DailyQuotaReserveError)
    sandbox.limiter = type(sandbox.limiter)(RateLimits(burst=10_000))  # a new day
    second = run_sync(config, state=first.final_state)
    seen = {r["id"] for r in first.records("contacts")} | {r["id"] for r in second.records("contacts")}
    assert seen == set(sandbox.account.contacts)
    notes = {(r["id"]) for r in first.records("notes")} | {r["id"] for r in second.records("notes")}
    assert notes == set(sandbox.account.truth()["notes"])
