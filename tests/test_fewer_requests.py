"""Location-wide endpoints instead of one request per contact per child."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from tap_ghl_contacts.errors import APIResponseError
from tap_ghl_contacts.sandbox.account import epoch_ms
from tap_ghl_contacts.streams import EVENTS_PER_REQUEST
from tests.helpers import pit_config, run_sync
from tests.sandboxes import BASE_TIME, sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_ghl_contacts.sandbox import SandboxAPI

STREAMS = ("tasks", "notes", "appointments")


def naive_requests(contacts: int, page_size: int) -> int:
    """One search page per page_size contacts, plus three child requests per contact."""
    return -(-contacts // page_size) + 3 * contacts


def paths(sandbox: SandboxAPI) -> Counter[str]:
    return Counter(
        "/contacts/{id}/" + r["path"].rsplit("/", 1)[1]
        if r["path"].count("/") == 3 and r["path"].startswith("/contacts/")
        else r["path"]
        for r in sandbox.api_calls()
    )


def test_a_full_sync_uses_bulk_endpoints_and_misses_nothing(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(330, tie_every=4)
    out = run_sync(
        pit_config(sandbox, mock_sandbox(sandbox), page_size=100, start_date="2023-01-01T00:00:00Z")
    )
    truth = sandbox.account.truth()
    for stream in STREAMS:
        assert sorted(r["id"] for r in out.records(stream)) == truth[stream], stream
    used = paths(sandbox)
    batches = [json.loads(r["body"]) for r in sandbox.api_calls("/locations/loc-test-0001/tasks/search")]
    assert [len(b["contactId"]) for b in batches if b["skip"] == 0] == [100, 100, 100, 30]
    assert used["/contacts/{id}/tasks"] == used["/contacts/{id}/appointments"] == 0
    assert used["/calendars/"] == 1
    assert used["/contacts/{id}/notes"] == 330  # notes have no bulk endpoint
    assert sum(used.values()) <= 0.4 * naive_requests(330, 100)


def test_a_no_change_incremental_run_costs_a_handful_of_requests(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(200)  # one contact a minute: the 300 s lookback covers six of them
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=100)
    first = run_sync(config)
    sandbox.requests.clear()
    second = run_sync(config, state=first.final_state)
    # One search, the calendar list and one events window per calendar; the contacts
    # re-read by the lookback were synced as they are, so neither they nor their
    # tasks and notes are fetched or emitted again.
    assert paths(sandbox) == {"/contacts/search": 1, "/calendars/": 1, "/calendars/events": 1}
    assert [m for m in second.messages if m["type"] == "RECORD"] == []
    assert second.final_state["bookmarks"]["contacts"] == first.final_state["bookmarks"]["contacts"]


def test_a_contact_changed_inside_the_lookback_is_synced_again(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(30)
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=100)
    first = run_sync(config)
    remembered = first.final_state["bookmarks"]["contacts"]["synced_in_lookback"]
    assert list(remembered) == [f"c{i:06d}" for i in range(24, 30)]  # the newest one and 5 min before
    # A late write GHL indexes after the bookmark moved on: inside the lookback, new dateUpdated.
    sandbox.account.touch(["c000026"], BASE_TIME + dt.timedelta(minutes=28, seconds=30))
    sandbox.requests.clear()
    second = run_sync(config, state=first.final_state)
    assert [r["id"] for r in second.records("contacts")] == ["c000026"]
    assert {r["contactId"] for r in second.records("notes")} <= {"c000026"}
    assert paths(sandbox)["/contacts/{id}/notes"] == 1


def test_changed_contacts_get_their_tasks_and_notes_again(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(120)
    config = pit_config(sandbox, mock_sandbox(sandbox), page_size=100, lookback_seconds=0)
    first = run_sync(config)
    changed = ["c000004", "c000050", "c000101"]
    sandbox.account.touch(changed, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    sandbox.account.tasks["c000050"].append(
        {"id": "t-new", "title": "New", "contactId": "c000050", "completed": False}
    )
    sandbox.requests.clear()
    second = run_sync(config, state=first.final_state)
    assert {r["contactId"] for r in second.records("notes")} <= set(changed)
    assert "t-new" in {r["id"] for r in second.records("tasks")}
    searches = [json.loads(r["body"]) for r in sandbox.api_calls("/locations/loc-test-0001/tasks/search")]
    # Only the changed contacts, in one request: the one at the old bookmark is read
    # again (>=) but was synced as it is.
    assert [sorted(s["contactId"]) for s in searches] == [sorted(changed)]


def test_incremental_appointments_re_read_only_the_recent_window(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(10)
    config = pit_config(
        sandbox, mock_sandbox(sandbox), appointments_resync_days=30, appointments_horizon_days=365
    )
    first = run_sync(config)
    assert sorted(r["id"] for r in first.records("appointments")) == sandbox.account.truth()["appointments"]
    sandbox.requests.clear()
    run_sync(config, state=first.final_state)
    windows = [r["query"] for r in sandbox.api_calls("/calendars/events")]
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    assert len(windows) == 1
    assert abs(int(windows[0]["startTime"][0]) - (now_ms - 30 * 86_400_000)) < 600_000
    assert abs(int(windows[0]["endTime"][0]) - (now_ms + 365 * 86_400_000)) < 600_000


def test_a_tasks_search_row_without_a_known_contact_is_an_error(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(3)
    for rows in sandbox.account.tasks.values():
        for row in rows:
            row.pop("contactId")
    with pytest.raises(APIResponseError, match="per_contact"):
        run_sync(pit_config(sandbox, mock_sandbox(sandbox)))


def test_many_tasks_for_one_batch_are_paged(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(5)
    sandbox.account.tasks["c000003"] = [
        {"id": f"t-many-{n}", "title": "Bulk", "contactId": "c000003", "completed": False} for n in range(250)
    ]
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox)))
    assert sorted(r["id"] for r in out.records("tasks")) == sandbox.account.truth()["tasks"]
    skips = [
        json.loads(r["body"])["skip"] for r in sandbox.api_calls("/locations/loc-test-0001/tasks/search")
    ]
    assert skips == [0, 100, 200]


def appointments_by_source(out: Any) -> list[str]:
    return sorted(r["id"] for r in out.records("appointments"))


def test_both_appointment_sources_agree(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(40)
    url = mock_sandbox(sandbox)
    by_calendar = run_sync(pit_config(sandbox, url))
    per_contact = run_sync(
        pit_config(sandbox, url, appointments_source="per_contact", tasks_source="per_contact")
    )
    assert appointments_by_source(by_calendar) == appointments_by_source(per_contact)
    assert sorted(r["id"] for r in by_calendar.records("tasks")) == sorted(
        r["id"] for r in per_contact.records("tasks")
    )


def test_notes_of_all_contacts_mode_reads_every_contact_every_run(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(60)
    config = pit_config(
        sandbox, mock_sandbox(sandbox), page_size=25, lookback_seconds=0, notes_scope="all_contacts"
    )
    first = run_sync(config)
    assert sorted(r["id"] for r in first.records("notes")) == sandbox.account.truth()["notes"]
    # A note added without touching its contact: only all_contacts mode sees it.
    sandbox.account.notes["c000007"].append(
        {"id": "n-quiet", "body": "added quietly", "contactId": "c000007"}
    )
    second = run_sync(config, state=first.final_state)
    assert "n-quiet" in {r["id"] for r in second.records("notes")}
    assert second.records("contacts") == []  # contacts stay incremental
    changed_only = run_sync({**config, "notes_scope": "changed_contacts"}, state=first.final_state)
    assert "n-quiet" not in {r["id"] for r in changed_only.records("notes")}  # what that mode misses


def test_the_calendar_scan_narrows_its_windows_where_appointments_are_dense(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(2)
    busy = [
        {
            "id": f"a-busy-{n}",
            "calendarId": "cal1",
            "title": "Busy day",
            "startTime": f"2024-06-{1 + n % 28:02d} {n % 24:02d}:00:00",
            "endTime": f"2024-06-{1 + n % 28:02d} {n % 24:02d}:30:00",
            "contactId": "c000000",
            "dateUpdated": "2024-05-01T00:00:00Z",
        }
        for n in range(5000)
    ]
    sandbox.account.appointments["c000000"].extend(busy)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), start_date="2024-01-01T00:00:00Z"))
    assert sorted(r["id"] for r in out.records("appointments")) == sandbox.account.truth()["appointments"]
    starts = [epoch_ms(a["startTime"]) for rows in sandbox.account.appointments.values() for a in rows]
    per_answer = [
        sum(int(r["query"]["startTime"][0]) <= t <= int(r["query"]["endTime"][0]) for t in starts)
        for r in sandbox.api_calls("/calendars/events")
    ]
    assert max(per_answer) > EVENTS_PER_REQUEST  # the first window met the busy month whole
    assert sum(n > EVENTS_PER_REQUEST for n in per_answer) == 1  # then windows narrowed


def test_empty_years_before_the_first_appointment_do_not_widen_the_calendar_scan(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(2)
    steady = [
        {
            "id": f"a-steady-{n}",
            "calendarId": "cal1",
            "title": "Daily call",
            "startTime": f"{dt.date(2024, 1, 1) + dt.timedelta(days=n // 12)} {n % 12 + 8:02d}:00:00",
            "endTime": f"{dt.date(2024, 1, 1) + dt.timedelta(days=n // 12)} {n % 12 + 8:02d}:30:00",
            "contactId": "c000000",
            "dateUpdated": "2024-01-01T00:00:00Z",
        }
        for n in range(12 * 365)
    ]
    sandbox.account.appointments["c000000"].extend(steady)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), start_date="2020-01-01T00:00:00Z"))
    assert sorted(r["id"] for r in out.records("appointments")) == sandbox.account.truth()["appointments"]
    starts = [epoch_ms(a["startTime"]) for rows in sandbox.account.appointments.values() for a in rows]
    per_answer = [
        sum(int(r["query"]["startTime"][0]) <= t <= int(r["query"]["endTime"][0]) for t in starts)
        for r in sandbox.api_calls("/calendars/events")
    ]
    # Four empty years grow no window past the first scan's: the busy year comes in months.
    assert max(per_answer) <= EVENTS_PER_REQUEST
