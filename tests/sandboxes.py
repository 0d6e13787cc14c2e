"""Sandboxes with small, predictable data for focused tests.

The package's sandbox (``tap_ghl_contacts.sandbox``) speaks GHL's rules; these builders
give it data whose ids and timestamps a test can reason about: contact ``c000042``
was updated ``42 // tie_every`` minutes after 2024-01-01, and has ``42 % 3`` tasks.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from tap_ghl_contacts.sandbox import Account, RateLimits, SandboxAPI
from tap_ghl_contacts.sandbox.account import iso_ms

BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SCHEMA_FOLDER = Path(__file__).resolve().parent.parent / "schemas"
TEST_LOCATION = "loc-test-0001"

JSON = dict[str, Any]


def sample_value(schema: JSON) -> Any:  # noqa: PLR0911
    """A non-null value for a schema, so tests see every column filled."""
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if schema.get("format") == "date-time":
        return "2024-05-01T10:00:00+02:00"
    if "object" in kinds:
        return {k: sample_value(v) for k, v in schema.get("properties", {}).items()} or {"any": "thing"}
    if "array" in kinds:
        return [sample_value(schema.get("items") or {"type": "string"})]
    if "string" in kinds or not kinds:
        return "sample"
    if "integer" in kinds:
        return 7
    if "number" in kinds:
        return 7.5
    if "boolean" in kinds:
        return True
    return "sample"


def full_record(stream: str, **keys: Any) -> JSON:
    """A row with every field of ``stream``'s schema set, plus one the schema lacks."""
    schema = json.loads((SCHEMA_FOLDER / f"{stream}.json").read_text(encoding="utf-8"))
    row = {k: sample_value(v) for k, v in schema["properties"].items() if k != "_extra"}
    row.update(keys, undocumentedField="kept in _extra")
    return row


def make_contact(index: int, updated: dt.datetime, location_id: str = TEST_LOCATION) -> JSON:
    """A search row with the shapes real data has."""
    return {
        "id": f"c{index:06d}",
        "locationId": location_id,
        "firstNameLowerCase": f"zoë-{index}",
        "lastNameLowerCase": "o'brien",
        "email": None if index % 7 == 0 else f"person{index}@example.com",
        "phone": None if index % 5 == 0 else f"+1555{index:07d}",
        "tags": ["lead"] if index % 2 else [],
        "customFields": [
            {"id": "cf_text", "value": "gold"},
            {"id": "cf_number", "value": index},
            {"id": "cf_multi", "value": ["a", "b"]},
        ],
        "dateAdded": iso_ms(BASE_TIME),
        "dateUpdated": iso_ms(updated),
        "dateOfBirth": 631152000000 if index % 3 == 0 else None,
        "dnd": False,
        "opportunities": [],
    }


def add_children(account: Account, contact_id: str, index: int) -> None:
    """``index % 3`` tasks, ``(index + 1) % 3`` notes, ``(index + 2) % 3`` appointments."""
    account.tasks[contact_id] = [
        {
            "id": f"t-{contact_id}-{n}",
            "title": "Call back",
            "body": None,
            "dueDate": iso_ms(BASE_TIME + dt.timedelta(days=n)),
            "completed": n % 2 == 0,
            "contactId": contact_id,
        }
        for n in range(index % 3)
    ]
    account.notes[contact_id] = [
        {
            "id": f"n-{contact_id}-{n}",
            "body": "Ünïcode ✓ note",
            "dateAdded": "2024-02-01T10:00:00+02:00",
            "contactId": contact_id,
            "userId": "u1",
        }
        for n in range((index + 1) % 3)
    ]
    account.appointments[contact_id] = [
        {
            "id": f"a-{contact_id}-{n}",
            "calendarId": "cal1",
            "title": "Demo",
            "startTime": "2024-03-01 09:30:00",
            "endTime": "2024-03-01 10:00:00",
            "dateAdded": 1704067200000,
            "dateUpdated": "2024-01-01T00:00:00Z",
            "contactId": contact_id,
            "appointmentStatus": "confirmed",
        }
        for n in range((index + 2) % 3)
    ]


def predictable_account(
    count: int, *, tie_every: int = 1, children: bool = True, full_rows: bool = False
) -> Account:
    """``count`` contacts; each run of ``tie_every`` contacts shares one dateUpdated."""
    account = Account(location_id=TEST_LOCATION)
    account.calendars = [{"id": "cal1", "name": "Demos", "locationId": TEST_LOCATION}]
    for index in range(count):
        contact = make_contact(index, BASE_TIME + dt.timedelta(minutes=index // tie_every))
        if full_rows and index == 1:
            contact = full_record("contacts", **{k: contact[k] for k in ("id", "locationId", "dateUpdated")})
        account.add_contact(contact)
        if children:
            add_children(account, contact["id"], index)
    if full_rows and count > 1:
        contact_id = f"c{1:06d}"
        account.tasks[contact_id].append(full_record("tasks", id="t-full", contactId=contact_id))
        account.notes[contact_id].append(full_record("notes", id="n-full", contactId=contact_id))
        account.appointments[contact_id].append(
            full_record("appointments", id="a-full", contactId=contact_id, calendarId="cal1")
        )
    return account


def sandbox_with(
    count: int,
    *,
    tie_every: int = 1,
    children: bool = True,
    full_rows: bool = False,
    rate_limits: RateLimits | None = None,
    **options: Any,
) -> SandboxAPI:
    """A sandbox over predictable data; rate limits off unless a test asks for them."""
    account = predictable_account(count, tie_every=tie_every, children=children, full_rows=full_rows)
    return SandboxAPI(account, rate_limits=rate_limits or RateLimits(enabled=False), **options)


def contact_ids(sandbox: SandboxAPI) -> set[str]:
    """Every contact id the sandbox holds now."""
    return set(sandbox.account.contacts)
