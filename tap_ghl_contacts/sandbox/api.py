"""GHL API v2 rules, as the tap uses them, over an in-memory ``Account``.

Transport-free: ``SandboxAPI.handle`` takes a request's parts and returns a ``Reply``;
``server.py`` puts it on a real socket and the tests can also mount it on
requests-mock. Sources for each rule: ../shared/ghl-api-facts.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import operator
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tap_ghl_contacts.sandbox.account import Account, epoch_ms

if TYPE_CHECKING:
    from collections.abc import Callable

JSON = dict[str, Any]

CONTACTS_VERSION = "2021-07-28"
CALENDARS_VERSION = "2021-04-15"
KNOWN_VERSIONS = frozenset({CONTACTS_VERSION, CALENDARS_VERSION})
MAX_PAGE_LIMIT = 500
MAX_PAGED_RESULTS = 10_000
MAX_TASK_SEARCH_LIMIT = 100
ACCESS_TOKEN_TTL = 86399
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Reply:
    """One answer: a JSON body (dict) or raw text, or a dropped connection."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    reset: bool = False
    delay: float = 0.0

    def text(self) -> str:
        """The body as sent on the wire."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


def error(status: int, message: str | list[str]) -> Reply:
    """An error body shaped like GHL's (``message`` is a list on 422)."""
    return Reply(status, {"statusCode": status, "message": message, "error": REASONS.get(status, "Error")})


@dataclass
class RateLimits:
    """GHL's default limits per app (or PIT) and location."""

    enabled: bool = True
    burst: int = 100
    interval_ms: int = 10_000
    daily: int = 200_000
    send_retry_after: bool = False  # whether GHL sends Retry-After on 429 is unconfirmed


class RateLimiter:
    """A sliding burst window and a daily quota per caller; headers on every answer."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        """Count requests per key against ``limits``."""
        self.limits = limits
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._daily: dict[str, int] = {}
        self.rejected = 0

    def exhausted_headers(self) -> dict[str, str]:
        """Headers of a 429 that a fault injects (nothing left in this interval)."""
        headers = {
            "X-RateLimit-Limit-Daily": str(self.limits.daily),
            "X-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-RateLimit-Max": str(self.limits.burst),
            "X-RateLimit-Remaining": "0",
        }
        if self.limits.send_retry_after:
            headers["Retry-After"] = str(max(1, self.limits.interval_ms // 1000))
        return headers

    def take(self, key: str) -> tuple[bool, dict[str, str]]:
        """Spend one request for ``key``; returns whether it is allowed and the headers."""
        now = self._clock()
        window = self.limits.interval_ms / 1000
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - window:
            recent.popleft()
        used_today = self._daily.get(key, 0)
        allowed = not self.limits.enabled or (
            len(recent) < self.limits.burst and used_today < self.limits.daily
        )
        if allowed:
            recent.append(now)
            used_today += 1
            self._daily[key] = used_today
        else:
            self.rejected += 1
        if not self.limits.enabled:
            return True, {}  # limits off (tests, unthrottled benchmarks): nothing to pace by
        headers = {
            "X-RateLimit-Limit-Daily": str(self.limits.daily),
            "X-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - used_today)),
            "X-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-RateLimit-Max": str(self.limits.burst),
            "X-RateLimit-Remaining": str(max(0, self.limits.burst - len(recent))),
        }
        if not allowed and self.limits.send_retry_after and recent:
            headers["Retry-After"] = str(max(1, int(recent[0] + window - now + 0.999)))
        return allowed, headers


FAULT_KINDS = frozenset({"500", "502", "503", "html", "reset", "slow", "truncate", "revoke", "429", "fatal"})


@dataclass
class Fault:
    """A failure to inject into matching API requests.

    ``after`` matching requests pass first; then ``times`` of them fail (``None``: all).
    ``probability`` makes a matching request fail at random (seeded) instead.
    """

    kind: str
    path: str = ""
    after: int = 0
    times: int | None = 1
    seconds: float = 5.0
    probability: float | None = None
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        """Refuse kinds the sandbox does not know."""
        if self.kind not in FAULT_KINDS:
            msg = f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(FAULT_KINDS))}"
            raise ValueError(msg)

    def fires(self, path: str, rng: random.Random) -> bool:
        """Whether this request gets the fault."""
        if self.path and not re.search(self.path, path):
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        if self.probability is not None and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


@dataclass
class Credentials:
    """The sandbox's own (obviously fake) credentials."""

    pit: str = "pit-sandbox-0000-fake-token"
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret-fake"  # noqa: S105


class SandboxAPI:
    """A GHL location behind GHL's rules, with switches for tests and benchmarks."""

    def __init__(  # noqa: PLR0913  (keyword-only switches)
        self,
        account: Account,
        *,
        credentials: Credentials | None = None,
        rate_limits: RateLimits | None = None,
        latency: float = 0.0,
        access_token_ttl: int = ACCESS_TOKEN_TTL,
        seed: int = 7,
    ) -> None:
        """Serve ``account``; nothing listens until a server or mock mounts ``handle``."""
        self.account = account
        self.credentials = credentials or Credentials()
        self.limiter = RateLimiter(rate_limits or RateLimits())
        self.latency = latency
        self.access_token_ttl = access_token_ttl
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.auth_codes: set[str] = set()
        self._issued: set[str] = set()  # every token and code ever handed out, for leak checks
        self.faults: list[Fault] = []
        self.requests: list[JSON] = []
        self.token_grants = 0
        self.max_in_flight = 0  # most API requests in progress at once (set by the server)
        # Switches for failure tests.
        self.reject_all_tokens = False
        # Token answers to lose after rotating: GHL spent the old refresh token, the tap never hears.
        self.drop_token_answers = 0
        self.omit_search_after = False
        self.after_search: Callable[[], None] | None = None
        self.on_tokens_changed: Callable[[], None] | None = None
        self._rng = random.Random(seed)  # noqa: S311  (fault dice, not secrets)
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self._index_cache: dict[str, tuple[int, list[tuple[int, str]]]] = {}

    # Conveniences for tests and the CLI

    @property
    def location_id(self) -> str:
        """The one location this sandbox serves."""
        return self.account.location_id

    def issue_refresh_token(self) -> str:
        """A live refresh token, as if the user had just authorised the app."""
        with self._lock:
            token = f"sandbox-refresh-{next(self._counter)}-{self._rng.getrandbits(64):016x}"
            self.refresh_tokens.add(token)
            self._issued.add(token)
            self._tokens_changed()
            return token

    def issue_auth_code(self) -> str:
        """A consent-screen code that ``/oauth/token`` trades for tokens once."""
        with self._lock:
            code = f"sandbox-code-{next(self._counter)}"
            self.auth_codes.add(code)
            self._issued.add(code)
            return code

    def secrets(self) -> set[str]:
        """The PIT, the client secret and every token and code issued so far."""
        with self._lock:
            return {self.credentials.pit, self.credentials.client_secret, *self._issued}

    def revoke_access_tokens(self) -> None:
        """Invalidate every access token (a revoked or expired grant)."""
        with self._lock:
            self.access_tokens.clear()
            self._tokens_changed()

    def mutate(self, rng: random.Random, when: dt.datetime, *, scale: float = 0.01) -> JSON:
        """Apply one round of user edits to the account (see ``Account.mutate``)."""
        with self._lock:
            return self.account.mutate(rng, when, scale=scale)

    def inject(self, kind: str, **options: Any) -> Fault:  # noqa: ANN401
        """Add a fault; see ``Fault`` for the options."""
        fault = Fault(kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def api_calls(self, path: str | None = None) -> list[JSON]:
        """Logged requests other than token requests, optionally to one path."""
        return [
            r for r in self.requests if r["path"] != "/oauth/token" and (path is None or r["path"] == path)
        ]

    def _tokens_changed(self) -> None:
        if self.on_tokens_changed is not None:
            self.on_tokens_changed()

    # The request pipeline

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
            reply = self._answer(method, path, {k.lower(): v for k, v in headers.items()}, query, body)
            entry["status"] = reply.status
        reply.delay += self.latency
        return reply

    def _answer(
        self, method: str, path: str, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Reply:
        if path == "/oauth/token" and method == "POST":
            return self._token(parse_qs(body.decode(errors="replace")))
        fault = next((f for f in self.faults if f.fires(path, self._rng)), None)
        if fault is not None:
            if fault.kind == "revoke":
                self.revoke_access_tokens()
            elif (injected := self._fault_reply(fault)) is not None:
                return injected
        caller = self._caller(headers)
        if caller is None:
            return error(401, "Invalid JWT")
        allowed, rate_headers = self.limiter.take(f"{caller}:{self.location_id}")
        if not allowed:
            reply = Reply(
                429, {"statusCode": 429, "message": "Too many requests", "error": "Too Many Requests"}
            )
        elif headers.get("version") not in KNOWN_VERSIONS:
            reply = error(400, "Version header is missing or unknown")
        else:
            reply = self._route(method, path, query, body)
        reply.headers.update(rate_headers)
        if fault is not None and fault.kind == "slow":
            reply.delay += fault.seconds
        return reply

    def _fault_reply(self, fault: Fault) -> Reply | None:  # noqa: PLR0911  (one return per kind)
        kind = fault.kind
        if kind in {"500", "502", "503"}:
            return error(int(kind), REASONS[int(kind)])
        if kind == "html":
            page = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
            return Reply(502, page, content_type="text/html")
        if kind == "reset":
            return Reply(0, reset=True)
        if kind == "429":
            body = {"statusCode": 429, "message": "Too many requests"}
            return Reply(429, body, headers=self.limiter.exhausted_headers())
        if kind == "fatal":
            return error(422, ["simulated failure"])
        if kind == "truncate":
            return Reply(200, '{"contacts": [{"id": "con-00', content_type="application/json")
        return None  # slow and revoke change how the real answer goes out

    def _caller(self, headers: dict[str, str]) -> str | None:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if self.reject_all_tokens or not token:
            return None
        if token == self.credentials.pit:
            return f"pit:{token[-6:]}"
        expiry = self.access_tokens.get(token)
        if expiry is None or expiry < time.time():
            return None
        return f"app:{self.credentials.client_id}"

    # OAuth

    def _token(self, form: dict[str, list[str]]) -> Reply:
        def one(key: str) -> str | None:
            values = form.get(key)
            return values[0] if values else None

        self.token_grants += 1
        if (
            one("client_id") != self.credentials.client_id
            or one("client_secret") != self.credentials.client_secret
        ):
            return Reply(401, {"error": "invalid_client", "error_description": "Invalid client credentials"})
        grant = one("grant_type")
        if grant == "refresh_token":
            spent = one("refresh_token")
            if spent not in self.refresh_tokens:
                return Reply(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Invalid grant: refresh token is invalid",
                    },
                )
            self.refresh_tokens.discard(spent)  # single use
        elif grant == "authorization_code":
            code = one("code")
            if code not in self.auth_codes:
                return Reply(
                    400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
                )
            self.auth_codes.discard(code)
        else:
            return Reply(400, {"error": "unsupported_grant_type"})
        serial = next(self._counter)
        access = f"sandbox-access-{serial}-{self._rng.getrandbits(64):016x}"
        refresh = f"sandbox-refresh-{serial}-{self._rng.getrandbits(64):016x}"
        self.access_tokens[access] = time.time() + self.access_token_ttl
        self.refresh_tokens.add(refresh)
        self._issued.update((access, refresh))
        self._tokens_changed()
        if self.drop_token_answers > 0:
            self.drop_token_answers -= 1
            return Reply(0, reset=True)  # rotated at GHL, connection dropped on the way back
        return Reply(
            200,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.access_token_ttl,
                "refresh_token": refresh,
                "scope": "contacts.readonly calendars/events.readonly locations/tasks.readonly",
                "userType": "Location",
                "locationId": self.location_id,
                "userId": "sandbox-user",
            },
        )

    # Routes

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:  # noqa: PLR0911
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/contacts/search":
            return self._search(_json_body(body))
        if (
            method == "GET"
            and len(parts) == 3  # noqa: PLR2004  (contacts/{id}/{kind})
            and parts[0] == "contacts"
            and parts[2] in {"tasks", "notes", "appointments"}
        ):
            return self._contact_children(parts[1], parts[2])
        if method == "GET" and len(parts) == 2 and parts[0] == "contacts":  # noqa: PLR2004
            contact = self.account.contacts.get(parts[1])
            return Reply(200, {"contact": contact}) if contact else error(404, "Contact not found")
        if method == "GET" and path.rstrip("/") == "/calendars":
            return self._scoped(query, lambda: Reply(200, {"calendars": self.account.calendars}))
        if method == "GET" and path == "/calendars/events":
            return self._scoped(query, lambda: self._calendar_events(query))
        if len(parts) >= 2 and parts[0] == "locations":  # noqa: PLR2004
            if parts[1] != self.location_id:
                return error(403, "The token does not have access to this location.")
            return self._location_route(method, parts[2:], body)
        return error(404, f"Cannot {method} {path}")

    def _scoped(self, query: dict[str, list[str]], answer: Callable[[], Reply]) -> Reply:
        location = first(query, "locationId")
        if not location:
            return error(422, ["locationId should not be empty"])
        if location != self.location_id:
            return error(403, "The token does not have access to this location.")
        return answer()

    def _location_route(self, method: str, rest: list[str], body: bytes) -> Reply:
        if method == "GET" and not rest:
            return Reply(
                200, {"location": {"id": self.location_id, "name": "Sandbox Location", "timezone": "UTC"}}
            )
        if method == "GET" and rest == ["customFields"]:
            return Reply(200, {"customFields": self.account.custom_fields})
        if method == "GET" and rest == ["tags"]:
            return Reply(200, {"tags": self.account.tags})
        if method == "POST" and rest == ["tasks", "search"]:
            return self._task_search(_json_body(body))
        return error(404, f"Cannot {method} /locations/{self.location_id}/{'/'.join(rest)}")

    def _contact_children(self, contact_id: str, kind: str) -> Reply:
        if contact_id not in self.account.contacts:
            return error(404, "Contact not found")
        rows = [dict(r) for r in self.account.children(kind).get(contact_id, [])]
        return Reply(200, {"events" if kind == "appointments" else kind: rows})

    def _index(self, field_name: str) -> list[tuple[int, str]]:
        """Contacts sorted by (field as epoch ms, id), rebuilt only after writes."""
        cached = self._index_cache.get(field_name)
        if cached is not None and cached[0] == self.account.version:
            return cached[1]
        keys = sorted(
            (epoch_ms(c[field_name]) if c.get(field_name) is not None else -1, cid)
            for cid, c in self.account.contacts.items()
        )
        self._index_cache[field_name] = (self.account.version, keys)
        return keys

    def _search(self, body: JSON) -> Reply:  # noqa: C901, PLR0911, PLR0912
        location, page_limit = body.get("locationId"), body.get("pageLimit")
        if not location or not isinstance(page_limit, int) or isinstance(page_limit, bool):
            return error(422, ["locationId should not be empty", "pageLimit must be an integer number"])
        if location != self.location_id:
            return error(403, "The token does not have access to this location.")
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            return error(422, [f"pageLimit must not be greater than {MAX_PAGE_LIMIT}"])
        if "page" in body and "searchAfter" in body:
            return error(422, ["page and searchAfter cannot be used together"])
        page = body.get("page", 1)
        if "searchAfter" not in body and (
            not isinstance(page, int) or page < 1 or page * page_limit > MAX_PAGED_RESULTS
        ):
            return error(422, [f"page x pageLimit must not exceed {MAX_PAGED_RESULTS}; use searchAfter"])
        sort = (body.get("sort") or [{"field": "dateAdded", "direction": "desc"}])[0]
        sort_field, descending = sort.get("field"), sort.get("direction") == "desc"
        if sort_field not in {"dateUpdated", "dateAdded"}:
            return error(422, [f"sort on {sort_field!r} is not supported by the sandbox"])
        keys = self._index(sort_field)
        lo, hi = 0, len(keys)
        other_filters = []
        for flt in body.get("filters") or []:
            if flt.get("operator") == "range" and flt.get("field") == sort_field:
                lo, hi = _narrow(keys, lo, hi, flt.get("value") or {})
            else:
                other_filters.append(flt)
        window = keys[lo:hi]
        if other_filters:
            window = [
                k for k in window if all(_matches(self.account.contacts[k[1]], f) for f in other_filters)
            ]
        if descending:
            window.reverse()
        total = len(window)
        if "searchAfter" in body:
            after = tuple(body["searchAfter"])
            if len(after) != 2:  # noqa: PLR2004
                return error(422, ["searchAfter must be the array returned on a row"])
            if descending:
                start = next((i for i, k in enumerate(window) if k < after), len(window))
            else:
                start = bisect.bisect_right(window, (int(after[0]), str(after[1])))
            chosen = window[start : start + page_limit]
        else:
            chosen = window[(page - 1) * page_limit : page * page_limit]
        rows = []
        for key in chosen:
            row = dict(self.account.contacts[key[1]])
            if not self.omit_search_after:
                row["searchAfter"] = [key[0], key[1]]
            rows.append(row)
        if self.after_search is not None:
            self.after_search()
        return Reply(200, {"contacts": rows, "total": total, "traceId": f"sandbox-{len(self.requests)}"})

    def _calendar_events(self, query: dict[str, list[str]]) -> Reply:
        def one(key: str) -> str | None:
            return first(query, key)

        start, end = one("startTime"), one("endTime")
        if not start or not end:
            return error(422, ["startTime and endTime are required (epoch milliseconds)"])
        calendar, user, group = one("calendarId"), one("userId"), one("groupId")
        if not (calendar or user or group):
            return error(422, ["one of calendarId, userId or groupId is required"])
        low, high = int(start), int(end)
        events = []
        for rows in self.account.appointments.values():
            for appointment in rows:
                begins = epoch_ms(appointment["startTime"])
                if not low <= begins <= high:
                    continue
                if calendar and appointment["calendarId"] != calendar:
                    continue
                if user and appointment.get("assignedUserId") != user:
                    continue
                events.append(_as_calendar_event(appointment, self.location_id))
        events.sort(key=lambda e: (e["startTime"], e["id"]))
        return Reply(200, {"events": events})

    def _task_search(self, body: JSON) -> Reply:
        limit, skip = body.get("limit", 25), body.get("skip", 0)
        if (
            not isinstance(limit, int)
            or not 1 <= limit <= MAX_TASK_SEARCH_LIMIT
            or not isinstance(skip, int)
            or skip < 0
        ):
            return error(422, [f"limit must be 1 to {MAX_TASK_SEARCH_LIMIT} and skip 0 or more"])
        wanted = set(body.get("contactId") or [])
        completed = body.get("completed")
        tasks = [
            dict(task)
            for contact_id in sorted(self.account.tasks)
            if not wanted or contact_id in wanted
            for task in self.account.tasks[contact_id]
            if completed is None or task.get("completed") == completed
        ]
        return Reply(200, {"tasks": tasks[skip : skip + limit], "traceId": f"sandbox-{len(self.requests)}"})


RANGE_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


def first(query: dict[str, list[str]], key: str) -> str | None:
    """The first value of a query parameter."""
    values = query.get(key)
    return values[0] if values else None


def _json_body(body: bytes) -> JSON:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _narrow(keys: list[tuple[int, str]], lo: int, hi: int, bounds: JSON) -> tuple[int, int]:
    """Apply gte/gt/lte/lt on the sort field with binary search."""
    if "gte" in bounds:
        lo = max(lo, bisect.bisect_left(keys, (epoch_ms(bounds["gte"]), "")))
    if "gt" in bounds:
        lo = max(lo, bisect.bisect_left(keys, (epoch_ms(bounds["gt"]) + 1, "")))
    if "lte" in bounds:
        hi = min(hi, bisect.bisect_left(keys, (epoch_ms(bounds["lte"]) + 1, "")))
    if "lt" in bounds:
        hi = min(hi, bisect.bisect_left(keys, (epoch_ms(bounds["lt"]), "")))
    return lo, max(lo, hi)


def _matches(contact: JSON, flt: JSON) -> bool:
    value, operator = contact.get(flt.get("field", "")), flt.get("operator")
    if operator == "eq":
        return bool(value == flt.get("value"))
    if operator == "not_eq":
        return bool(value != flt.get("value"))
    if operator == "exists":
        return value not in (None, "", [])
    if operator == "not_exists":
        return value in (None, "", [])
    if operator == "range":
        number = epoch_ms(value) if value is not None else None
        bounds = flt.get("value") or {}
        return number is not None and all(
            RANGE_OPERATORS[k](number, epoch_ms(v)) for k, v in bounds.items() if k in RANGE_OPERATORS
        )
    return True


def _as_calendar_event(appointment: JSON, location_id: str) -> JSON:
    """The /calendars/events shape: ISO times with an offset."""
    start = dt.datetime.fromtimestamp(epoch_ms(appointment["startTime"]) / 1000, tz=dt.UTC)
    end = dt.datetime.fromtimestamp(epoch_ms(appointment["endTime"]) / 1000, tz=dt.UTC)
    return {
        **appointment,
        "locationId": location_id,
        "startTime": start.isoformat(),
        "endTime": end.isoformat(),
        "isRecurring": False,
    }
