"""Child lists are fetched concurrently, yet records leave in the same order as one at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tap_ghl_contacts.sandbox import RateLimits
from tests.helpers import pit_config, run_sync, run_sync_catching, selecting
from tests.sandboxes import sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_ghl_contacts.sandbox import SandboxAPI


def emitted(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["stream"], m["record"]["id"]) for m in messages if m["type"] == "RECORD"]


def test_children_are_fetched_concurrently_in_deterministic_order(
    serve_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(40, tie_every=3, latency=0.02, rate_limits=RateLimits(enabled=False))
    url = serve_sandbox(sandbox)
    sequential = run_sync(pit_config(sandbox, url, page_size=15, max_concurrency=1))
    assert sandbox.max_in_flight <= 2  # one child fetch, beside the main thread's next search page
    concurrent = run_sync(pit_config(sandbox, url, page_size=15, max_concurrency=6))
    assert sandbox.max_in_flight >= 4  # several child requests were in flight at once
    assert emitted(concurrent.messages) == emitted(sequential.messages)
    assert concurrent.final_state["bookmarks"]["contacts"] == sequential.final_state["bookmarks"]["contacts"]


def test_a_failed_child_fetch_stops_the_run_with_its_error(
    serve_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(30, rate_limits=RateLimits(enabled=False))
    sandbox.inject("fatal", path="/contacts/c000017/notes", times=None)
    out, failure = run_sync_catching(
        pit_config(sandbox, serve_sandbox(sandbox), page_size=10, max_concurrency=6)
    )
    assert failure is not None
    assert "simulated failure" in str(failure)
    contacts = [r["id"] for r in out.records("contacts")]
    assert contacts == [f"c{i:06d}" for i in range(17)]  # nothing at or after the failing contact
    assert all(r["contactId"] < "c000017" for r in out.records("notes"))


def test_the_empty_months_before_a_calendars_first_event_are_fetched_concurrently(
    serve_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(20, latency=0.02, rate_limits=RateLimits(enabled=False))
    url = serve_sandbox(sandbox)
    appointments = selecting("appointments")
    config = pit_config(sandbox, url, start_date="2021-01-01T00:00:00Z")  # three empty years first
    sequential = run_sync({**config, "max_concurrency": 1}, catalog=appointments)
    assert sandbox.max_in_flight == 1
    concurrent = run_sync({**config, "max_concurrency": 6}, catalog=appointments)
    assert sandbox.max_in_flight >= 4
    assert emitted(concurrent.messages) == emitted(sequential.messages)
    found = sorted(r["id"] for r in concurrent.records("appointments"))
    assert found == sandbox.account.truth()["appointments"]
