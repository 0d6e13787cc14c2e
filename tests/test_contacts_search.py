"""Contacts: searchAfter paging, ties at page boundaries, incremental runs, resuming."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from tap_ghl_contacts.errors import APIResponseError
from tap_ghl_contacts.sandbox.account import iso_ms
from tests.helpers import pit_config, run_sync, run_sync_catching, selecting
from tests.sandboxes import BASE_TIME, contact_ids, sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_ghl_contacts.sandbox import SandboxAPI

CONTACTS_ONLY = selecting("contacts")


def search_bodies(sandbox: SandboxAPI) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in sandbox.requests if r["path"] == "/contacts/search"]


def test_paging_past_ten_thousand_uses_search_after(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(10_250, tie_every=40, children=False)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), page_size=500), catalog=CONTACTS_ONLY)

    ids = [r["id"] for r in out.records("contacts")]
    assert len(ids) == 10_250
    assert set(ids) == contact_ids(sandbox)
    bodies = search_bodies(sandbox)
    assert len(bodies) == 21  # 20 full pages and the short last one; no extra empty request
    assert all("page" not in b for b in bodies)
    assert all("searchAfter" in b for b in bodies[1:])
    assert all(
        b["pageLimit"] == 500 and b["sort"] == [{"field": "dateUpdated", "direction": "asc"}] for b in bodies
    )


def test_page_numbers_would_have_stopped_at_ten_thousand() -> None:
    # The sandbox enforces GHL's page x pageLimit cap, so the test above proves the tap avoided it.
    sandbox = sandbox_with(1, children=False)
    reply = sandbox.handle(
        "POST",
        "/contacts/search",
        {"Version": "2021-07-28", "Authorization": f"Bearer {sandbox.credentials.pit}"},
        {},
        json.dumps({"locationId": sandbox.location_id, "pageLimit": 500, "page": 21}).encode(),
    )
    assert reply.status == 422
    assert "10000" in reply.text()


@pytest.mark.parametrize(
    ("count", "page_size", "tie_every"), [(30, 7, 30), (50, 10, 10), (23, 5, 6), (10, 1, 4)]
)
def test_ties_across_page_boundaries_are_neither_lost_nor_repeated(
    mock_sandbox: Callable[[SandboxAPI], str], count: int, page_size: int, tie_every: int
) -> None:
    sandbox = sandbox_with(count, tie_every=tie_every, children=False)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), page_size=page_size), catalog=CONTACTS_ONLY)
    ids = Counter(r["id"] for r in out.records("contacts"))
    assert set(ids) == contact_ids(sandbox)
    assert set(ids.values()) == {1}


def test_second_run_sends_the_bookmark_and_emits_only_newer_contacts(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(60, tie_every=5, children=False)
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=25, lookback_seconds=0)
    first = run_sync(config, catalog=CONTACTS_ONLY)
    assert len(first.records("contacts")) == 60
    bookmark = first.final_state["bookmarks"]["contacts"]["replication_key_value"]
    assert bookmark == "2024-01-01T00:11:00.000000Z"  # the newest dateUpdated, in the tap's one form

    changed = ["c000003", "c000040", "c000059"]
    sandbox.account.touch(changed, BASE_TIME + dt.timedelta(days=2))
    sandbox.requests.clear()
    second = run_sync(config, state=first.final_state, catalog=CONTACTS_ONLY)

    # Contacts at the old bookmark are read again (>=) but were synced as they are:
    # only the changed ones are emitted, in dateUpdated order.
    assert [r["id"] for r in second.records("contacts")] == changed
    assert search_bodies(sandbox)[0]["filters"] == [
        {"field": "dateUpdated", "operator": "range", "value": {"gte": "2024-01-01T00:11:00.000000Z"}}
    ]
    assert (
        second.final_state["bookmarks"]["contacts"]["replication_key_value"] == "2024-01-03T00:00:00.000000Z"
    )


def test_lookback_rereads_a_window_before_the_bookmark(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(20, children=False)  # one contact per minute
    state = {
        "bookmarks": {
            "contacts": {
                "replication_key": "dateUpdated",
                "replication_key_value": iso_ms(BASE_TIME + dt.timedelta(minutes=15)),
            }
        }
    }
    out = run_sync(
        pit_config(sandbox, mock_sandbox(sandbox), lookback_seconds=300), state=state, catalog=CONTACTS_ONLY
    )
    assert [r["id"] for r in out.records("contacts")] == [f"c{i:06d}" for i in range(10, 20)]
    assert search_bodies(sandbox)[0]["filters"][0]["value"] == {"gte": "2024-01-01T00:10:00.000000Z"}


def test_a_bulk_import_beyond_the_lookback_memory_is_read_again_not_lost(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(1005, tie_every=2000, children=False)  # all share one dateUpdated
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=500)
    first = run_sync(config, catalog=CONTACTS_ONLY)
    assert len(first.final_state["bookmarks"]["contacts"]["synced_in_lookback"]) == 1000
    second = run_sync(config, state=first.final_state, catalog=CONTACTS_ONLY)
    # The five the memory had no room for come again; the 1,000 it holds are skipped.
    assert [r["id"] for r in second.records("contacts")] == [f"c{i:06d}" for i in range(5)]


def test_start_date_is_the_floor_on_a_first_run(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(20, children=False)
    out = run_sync(
        pit_config(sandbox, mock_sandbox(sandbox), start_date="2024-01-01T00:17:00Z"), catalog=CONTACTS_ONLY
    )
    assert [r["id"] for r in out.records("contacts")] == ["c000017", "c000018", "c000019"]
    assert search_bodies(sandbox)[0]["filters"][0]["value"] == {"gte": "2024-01-01T00:17:00.000000Z"}


def test_an_interrupted_run_resumes_from_its_last_state_without_loss(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(250, tie_every=3, children=False)
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=10, lookback_seconds=0)
    fault = sandbox.inject("fatal", path="/contacts/search", after=14, times=None)  # the 15th on fail
    first, failure = run_sync_catching(config, catalog=CONTACTS_ONLY)
    assert failure is not None
    assert "simulated failure" in str(failure)
    assert len(first.records("contacts")) == 140
    resume_state = first.final_state  # emitted after every 100 contacts
    assert resume_state["bookmarks"]["contacts"]["replication_key_value"] == "2024-01-01T00:33:00.000000Z"

    sandbox.faults.remove(fault)
    second = run_sync(config, state=resume_state, catalog=CONTACTS_ONLY)
    seen = Counter(r["id"] for r in [*first.records("contacts"), *second.records("contacts")])
    assert set(seen) == contact_ids(sandbox)  # nothing lost
    duplicates = sorted(cid for cid, n in seen.items() if n > 1)
    # Re-read: from the bookmark's dateUpdated (contact 99 ties with 100 and 101) to the failure.
    assert duplicates == [f"c{i:06d}" for i in range(99, 140)]
    assert max(seen.values()) == 2


def test_a_missing_cursor_on_a_full_page_stops_with_a_clear_error(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(10, children=False)
    sandbox.omit_search_after = True
    with pytest.raises(APIResponseError, match="searchAfter"):
        run_sync(pit_config(sandbox, mock_sandbox(sandbox), page_size=5), catalog=CONTACTS_ONLY)


def test_a_truncated_body_is_retried_not_emitted(
    mock_sandbox: Callable[[SandboxAPI], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _seconds: None)  # backoff waits are not what is tested
    sandbox = sandbox_with(12, children=False)
    sandbox.inject("truncate")
    sandbox.inject("html")
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), page_size=5), catalog=CONTACTS_ONLY)
    assert sorted(r["id"] for r in out.records("contacts")) == sorted(contact_ids(sandbox))
    assert [r["status"] for r in sandbox.requests][:3] == [200, 502, 200]
