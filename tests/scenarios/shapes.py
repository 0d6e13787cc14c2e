"""Response shapes GHL does not document: wrong types, nulls, missing and extra keys.

None of them may crash the run or vanish: a value of the wrong type is emitted as null
with the original kept in ``_extra``, and the log names the record and field, not the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.helpers import pit_config
from tests.sandboxes import sandbox_with
from tests.scenarios import Transcript, served
from tests.scenarios.faults import sync_cli

if TYPE_CHECKING:
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI

#: Values that must be kept, not logged.
ODD_VALUES = ("vip-as-text", "garbage-date", "soon-ish", "room-one")


def odd_sandbox() -> SandboxAPI:
    """A small location whose rows break the documented shapes in every way but one: ids."""
    sandbox = sandbox_with(12)
    account = sandbox.account
    contact = account.contacts["c000001"]
    contact.update(
        tags="vip-as-text", dnd="yes", dateAdded="garbage-date", brandNewField={"nested": [1, None]}
    )
    del contact["firstNameLowerCase"]
    account.tasks["c000001"][0].update(completed=1, dueDate="soon-ish", priority="high")
    note = account.notes["c000001"][0]
    note.update(pinned="true", body=None)
    del note["dateAdded"]
    account.appointments["c000000"][0].update(dateAdded="garbage-date", users="room-one")
    return sandbox


def odd_shapes_are_kept(folder: Path) -> Transcript:
    """Every record arrives; every odd value is in its record's _extra; the log names fields only."""
    transcript = Transcript("odd_shapes_are_kept")
    sandbox = odd_sandbox()
    with served(sandbox) as url:
        run = sync_cli(transcript, folder, pit_config(sandbox, url, start_date="2023-01-01T00:00:00Z"))
    transcript.guard(sandbox)
    assert run.returncode == 0, run.errors
    assert "Traceback" not in run.stderr
    by_id = {(m["stream"], m["record"]["id"]): m["record"] for m in run.messages if m["type"] == "RECORD"}
    truth = sandbox.account.truth()
    for stream in ("contacts", "tasks", "notes", "appointments"):
        assert sorted(i for s, i in by_id if s == stream) == truth[stream], stream

    contact = by_id["contacts", "c000001"]
    assert (contact["tags"], contact["dnd"], contact["dateAdded"]) == (None, None, None)
    assert contact["_extra"] == {
        "tags": "vip-as-text",
        "dnd": "yes",
        "dateAdded": "garbage-date",
        "brandNewField": {"nested": [1, None]},
    }
    assert "firstNameLowerCase" not in contact  # missing stays missing, not invented
    task = by_id["tasks", "t-c000001-0"]
    assert (task["completed"], task["dueDate"]) == (None, None)
    assert task["_extra"] == {"completed": 1, "dueDate": "soon-ish", "priority": "high"}
    note = by_id["notes", "n-c000001-0"]
    assert (note["pinned"], note["body"], note["_extra"]) == (None, None, {"pinned": "true"})
    appointment = by_id["appointments", "a-c000000-0"]
    assert (appointment["dateAdded"], appointment["users"]) == (None, None)
    assert appointment["_extra"] == {"dateAdded": "garbage-date", "users": "room-one"}

    warnings = [line for line in run.stderr.splitlines() if "did not match the declared type" in line]
    assert len(warnings) == 4, warnings  # one line per odd record, naming its fields
    assert "'c000001': dateAdded, dnd, tags" in run.stderr
    assert not [value for value in ODD_VALUES if value in run.stderr]
    return transcript
