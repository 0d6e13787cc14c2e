"""Tasks, notes and appointments: one request per contact, every record tied to its contact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.helpers import pit_config, run_sync
from tests.sandboxes import contact_ids, sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_ghl_contacts.sandbox import SandboxAPI

PER_CONTACT = {"tasks_source": "per_contact", "appointments_source": "per_contact"}
CHILDREN = {"tasks": "tasks", "notes": "notes", "appointments": "appointments"}


def test_children_cover_every_contact_and_carry_its_id(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(30, tie_every=4)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT, page_size=7))

    for stream in CHILDREN:
        expected = {(r["id"], cid) for cid, rows in sandbox.account.children(stream).items() for r in rows}
        got = [(r["id"], r["contactId"]) for r in out.records(stream)]
        assert sorted(got) == sorted(expected), stream  # exactly once each
    asked = {r["path"] for r in sandbox.requests}
    for contact_id in contact_ids(sandbox):
        for stream in CHILDREN:
            assert f"/contacts/{contact_id}/{stream}" in asked


def test_child_timestamps_are_normalised(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(3)
    out = run_sync(
        pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT, naive_timestamp_timezone="Europe/Berlin")
    )
    appointment = out.records("appointments")[0]
    assert appointment["startTime"] == "2024-03-01T08:30:00.000000Z"  # zone-less, read in Berlin time
    assert appointment["dateAdded"] == "2024-01-01T00:00:00.000000Z"  # epoch milliseconds
    note = out.records("notes")[0]
    assert note["dateAdded"] == "2024-02-01T08:00:00.000000Z"  # +02:00 offset


def test_child_rows_without_contact_id_get_it_from_the_parent(
    mock_sandbox: Callable[[SandboxAPI], str],
) -> None:
    sandbox = sandbox_with(3)
    for rows in sandbox.account.tasks.values():
        for row in rows:
            del row["contactId"]
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT))
    assert out.records("tasks")
    assert all(r["contactId"] == r["id"].split("-")[1] for r in out.records("tasks"))


def test_a_contact_deleted_mid_run_skips_its_children(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(4)
    sandbox.after_search = lambda: sandbox.account.delete_contact("c000002")
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT))
    assert {r["id"] for r in out.records("contacts")} == {"c000000", "c000001", "c000002", "c000003"}
    for stream in CHILDREN:
        expected = {(r["id"], cid) for cid, rows in sandbox.account.children(stream).items() for r in rows}
        assert {(r["id"], r["contactId"]) for r in out.records(stream)} == expected
        assert all(r["contactId"] != "c000002" for r in out.records(stream))
    assert "/contacts/c000002/tasks" in {r["path"] for r in sandbox.requests}  # asked, got 404, moved on


def test_undeclared_fields_are_kept_in_extra(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(2)
    sandbox.account.contacts["c000000"]["brandNewField"] = {"nested": [1, 2]}
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT))
    first = next(r for r in out.records("contacts") if r["id"] == sandbox.account.contacts["c000000"]["id"])
    assert first["_extra"] == {"brandNewField": {"nested": [1, 2]}}


def test_each_stream_gets_one_schema_message(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(20)
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox), **PER_CONTACT))
    schemas = [m["stream"] for m in out.messages if m["type"] == "SCHEMA"]
    assert sorted(schemas) == ["appointments", "contacts", "notes", "tasks"]
