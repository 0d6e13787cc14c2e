"""A small in-memory GHL API v2 for tests, reachable through requests-mock or a real server.

It follows GHL's rules where the tap depends on them (see ../shared/ghl-api-facts.md):
the Version header, bearer tokens scoped to one location, single-use rotating refresh
tokens, POST /contacts/search with pageLimit <= 500, page x pageLimit <= 10,000,
``searchAfter`` on every row, and the per-contact tasks/notes/appointments lists.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
from urllib.parse import parse_qs

FAKE_LOCATION = "loc-fake-0001"
FAKE_PIT = "pit-fake-token-for-tests"
FAKE_CLIENT_ID = "fake-client-id"
FAKE_CLIENT_SECRET = "fake-client-secret-for-tests"
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

SCHEMA_FOLDER = Path(__file__).resolve().parent.parent / "schemas"

JSON = dict[str, Any]
Reply = tuple[int, dict[str, str], Any]


def sample_value(schema: JSON) -> Any:  # noqa: PLR0911
    """A non-null value of every declared field, so tests see each column filled."""
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


def iso_ms(moment: dt.datetime) -> str:
    """GHL's usual form: 2024-01-01T00:00:00.000Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(value: Any) -> int:
    """Read an ISO string or epoch number as epoch milliseconds."""
    if isinstance(value, (int, float)):
        return int(value)
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def make_contact(index: int, updated: dt.datetime, location_id: str = FAKE_LOCATION) -> JSON:
    """A search row with the messy shapes real data has."""
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


@dataclass
class FakeGHL:
    """State of one fake GHL account, plus a log of what the tap asked."""

    location_id: str = FAKE_LOCATION
    contacts: list[JSON] = field(default_factory=list)
    tasks: dict[str, list[JSON]] = field(default_factory=dict)
    notes: dict[str, list[JSON]] = field(default_factory=dict)
    appointments: dict[str, list[JSON]] = field(default_factory=dict)
    pit: str = FAKE_PIT
    client_id: str = FAKE_CLIENT_ID
    client_secret: str = FAKE_CLIENT_SECRET
    access_token_lifetime: int = 86399
    # Tokens currently accepted: access token -> expiry (epoch s); live refresh tokens.
    access_tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    auth_codes: set[str] = field(default_factory=set)
    requests: list[JSON] = field(default_factory=list)
    token_grants: int = 0
    fail_next: list[Reply] = field(default_factory=list)
    # Switches for failure tests.
    reject_all_bearers: bool = False
    drop_search_after: bool = False
    after_search: Callable[[], None] | None = None
    # path -> how many requests to that path succeed before every further one fails with 422.
    fail_after: dict[str, int] = field(default_factory=dict)
    contact_ids: set[str] = field(default_factory=set)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Data set-up

    @classmethod
    def with_contacts(
        cls,
        count: int,
        *,
        tie_every: int = 1,
        children: bool = True,
        full_rows: bool = False,
        **kwargs: Any,
    ) -> FakeGHL:
        """``count`` contacts; each run of ``tie_every`` contacts shares one dateUpdated."""
        fake = cls(**kwargs)
        for index in range(count):
            updated = BASE_TIME + dt.timedelta(minutes=index // tie_every)
            contact = make_contact(index, updated, fake.location_id)
            if full_rows and index == 1:
                contact = full_record(
                    "contacts", **{k: contact[k] for k in ("id", "locationId", "dateUpdated")}
                )
            fake.add_contact(contact)
            if children:
                fake.add_children(contact["id"], index)
        if full_rows and count > 1:
            contact_id = fake.contacts[1]["id"]
            fake.tasks[contact_id].append(full_record("tasks", id="t-full", contactId=contact_id))
            fake.notes[contact_id].append(full_record("notes", id="n-full", contactId=contact_id))
            fake.appointments[contact_id].append(
                full_record("appointments", id="a-full", contactId=contact_id)
            )
        return fake

    def add_contact(self, contact: JSON) -> None:
        """Create a contact."""
        self.contacts.append(contact)
        self.contact_ids.add(contact["id"])

    def delete_contact(self, contact_id: str) -> None:
        """Delete a contact and what hangs off it."""
        self.contacts = [c for c in self.contacts if c["id"] != contact_id]
        self.contact_ids.discard(contact_id)
        for children in (self.tasks, self.notes, self.appointments):
            children.pop(contact_id, None)

    def add_children(self, contact_id: str, index: int) -> None:
        """0-2 tasks, notes and appointments, with GHL's mixed timestamp forms."""
        self.tasks[contact_id] = [
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
        self.notes[contact_id] = [
            {
                "id": f"n-{contact_id}-{n}",
                "body": "Ünïcode ✓ note",
                "dateAdded": "2024-02-01T10:00:00+02:00",
                "contactId": contact_id,
                "userId": "u1",
            }
            for n in range((index + 1) % 3)
        ]
        self.appointments[contact_id] = [
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

    def touch(self, contact_ids: list[str], when: dt.datetime) -> None:
        """Update contacts (as if edited in GHL) so the next incremental run sees them."""
        for contact in self.contacts:
            if contact["id"] in contact_ids:
                contact["dateUpdated"] = iso_ms(when)

    def issue_refresh_token(self) -> str:
        """A live refresh token, as if the user had just authorised the app."""
        token = f"fake-refresh-{next(self._counter)}"
        self.refresh_tokens.add(token)
        return token

    def issue_auth_code(self) -> str:
        """A consent-screen code the exchange command can trade for tokens."""
        code = f"fake-code-{next(self._counter)}"
        self.auth_codes.add(code)
        return code

    def revoke_access_tokens(self) -> None:
        """Make every access token invalid (a revoked grant or expired token)."""
        self.access_tokens.clear()

    # Request handling

    def handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
    ) -> Reply:
        """Answer one request the way GHL would."""
        with self._lock:
            entry: JSON = {"method": method, "path": path, "query": query, "body": body, "headers": headers}
            self.requests.append(entry)
            reply = self._reply(method, path, headers, body)
            entry["status"] = reply[0]
            return reply

    def _reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self.fail_next:
            return self.fail_next.pop(0)
        if path in self.fail_after and sum(r["path"] == path for r in self.requests) > self.fail_after[path]:
            return _error(422, ["simulated failure"])
        if path == "/oauth/token" and method == "POST":
            return self._token(parse_qs(body.decode()))
        if "version" not in {k.lower() for k in headers}:
            return _error(400, "Version header is missing")
        denied = self._check_bearer(headers)
        if denied is not None:
            return denied
        return self._route(method, path, body)

    def api_calls(self, path: str | None = None) -> list[JSON]:
        """Logged requests other than token requests, optionally to one path."""
        return [
            r for r in self.requests if r["path"] != "/oauth/token" and (path is None or r["path"] == path)
        ]

    def _route(self, method: str, path: str, body: bytes) -> Reply:
        if path == "/contacts/search" and method == "POST":
            return self._search(json.loads(body or b"{}"))
        child = re.fullmatch(r"/contacts/([^/]+)/(tasks|notes|appointments)", path)
        if child and method == "GET":
            contact_id, kind = child.groups()
            if contact_id not in self.contact_ids:
                return _error(404, "Contact not found")
            source = {"tasks": self.tasks, "notes": self.notes, "appointments": self.appointments}[kind]
            key = "events" if kind == "appointments" else kind
            return 200, {}, {key: [dict(r) for r in source.get(contact_id, [])]}
        return _error(404, f"Cannot {method} {path}")

    def _check_bearer(self, headers: dict[str, str]) -> Reply | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth.removeprefix("Bearer ")
        if token == self.pit and not self.reject_all_bearers:
            return None
        expiry = self.access_tokens.get(token)
        if self.reject_all_bearers or expiry is None or expiry < dt.datetime.now(dt.UTC).timestamp():
            return 401, {}, {"statusCode": 401, "message": "Invalid JWT", "error": "Unauthorized"}
        return None

    def _token(self, form: dict[str, list[str]]) -> Reply:
        def one(key: str) -> str | None:
            values = form.get(key)
            return values[0] if values else None

        self.token_grants += 1
        if one("client_id") != self.client_id or one("client_secret") != self.client_secret:
            return 401, {}, {"error": "invalid_client", "error_description": "Invalid client credentials"}
        grant = one("grant_type")
        if grant == "refresh_token":
            spent = one("refresh_token")
            if spent not in self.refresh_tokens:
                return (
                    400,
                    {},
                    {
                        "error": "invalid_grant",
                        "error_description": "Invalid grant: refresh token is invalid",
                    },
                )
            self.refresh_tokens.discard(spent)  # single use
        elif grant == "authorization_code":
            code = one("code")
            if code not in self.auth_codes:
                return 400, {}, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
            self.auth_codes.discard(code)
        else:
            return 400, {}, {"error": "unsupported_grant_type"}
        access = f"fake-access-{next(self._counter)}"
        refresh = f"fake-refresh-{next(self._counter)}"
        self.access_tokens[access] = dt.datetime.now(dt.UTC).timestamp() + self.access_token_lifetime
        self.refresh_tokens.add(refresh)
        return (
            200,
            {},
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.access_token_lifetime,
                "refresh_token": refresh,
                "scope": "contacts.readonly",
                "userType": "Location",
                "locationId": self.location_id,
                "userId": "fake-user",
            },
        )

    def _search(self, body: JSON) -> Reply:
        location = body.get("locationId")
        page_limit = body.get("pageLimit")
        if not location or not isinstance(page_limit, int):
            return _error(422, ["locationId should not be empty", "pageLimit must be an integer"])
        if location != self.location_id:
            return _error(403, "The token does not have access to this location.")
        if page_limit > 500:
            return _error(422, ["pageLimit must not be greater than 500"])
        if "page" in body and "searchAfter" in body:
            return _error(422, ["page and searchAfter cannot be used together"])
        page = int(body.get("page", 1))
        if "searchAfter" not in body and page * page_limit > 10_000:
            return _error(422, ["page x pageLimit must not exceed 10000; use searchAfter"])

        rows = [c for c in self.contacts if _matches(c, body.get("filters") or [])]
        sort = (body.get("sort") or [{"field": "dateAdded", "direction": "asc"}])[0]
        field_name, descending = sort["field"], sort.get("direction") == "desc"

        def key(contact: JSON) -> tuple[int, str]:
            return epoch_ms(contact[field_name]), contact["id"]

        rows.sort(key=key, reverse=descending)
        total = len(rows)
        if "searchAfter" in body:
            after = tuple(body["searchAfter"])
            rows = [r for r in rows if (key(r) < after if descending else key(r) > after)]
            window = rows[:page_limit]
        else:
            window = rows[(page - 1) * page_limit : page * page_limit]
        out = [dict(r) if self.drop_search_after else dict(r, searchAfter=list(key(r))) for r in window]
        if self.after_search is not None:
            self.after_search()
        return 200, {}, {"contacts": out, "total": total, "traceId": "fake-trace"}


def _matches(contact: JSON, filters: list[JSON]) -> bool:
    for flt in filters:
        if flt.get("operator") != "range":
            continue
        value = epoch_ms(contact[flt["field"]])
        bounds = flt["value"]
        if "gte" in bounds and value < epoch_ms(bounds["gte"]):
            return False
        if "gt" in bounds and value <= epoch_ms(bounds["gt"]):
            return False
        if "lte" in bounds and value > epoch_ms(bounds["lte"]):
            return False
        if "lt" in bounds and value >= epoch_ms(bounds["lt"]):
            return False
    return True


def _error(status: int, message: str | list[str]) -> Reply:
    reasons = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        422: "Unprocessable Entity",
    }
    return status, {}, {"statusCode": status, "message": message, "error": reasons.get(status, "Error")}
