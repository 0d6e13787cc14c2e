"""One small class per GHL endpoint."""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections import deque
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from tap_ghl_contacts.client import GHLStream
from tap_ghl_contacts.errors import APIResponseError
from tap_ghl_contacts.lookback import LookbackMemory
from tap_ghl_contacts.pagination import SearchAfterPaginator, SkipPaginator
from tap_ghl_contacts.timestamps import format_timestamp, parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable
    from importlib.resources.abc import Traversable

    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_ghl_contacts.prefetch import ChildPrefetcher


def _schema_folder() -> Traversable:
    """Schemas ship inside the wheel; an editable install reads the source tree."""
    packaged = importlib.resources.files(__package__) / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


SCHEMAS = SchemaDirectory(_schema_folder())
CALENDARS_API_VERSION = "2021-04-15"
# Contact ids per tasks search request, and tasks per page of its answer.
TASK_SEARCH_BATCH = 100
TASK_SEARCH_PAGE = 100
# Calendar scan: aim for at most this many events per answer.
EVENTS_PER_REQUEST = 1000
FIRST_SCAN_WINDOW = dt.timedelta(days=30)
MIN_WINDOW = dt.timedelta(hours=1)
# Empty windows fetched at once before a calendar's first event: the batch that meets the
# first busy month holds this many windows' events in memory together.
WINDOWS_AHEAD = 4
# Contacts read ahead of the writer, per pool worker, so the pool never idles.
LOOKAHEAD_PER_WORKER = 4


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class ContactsStream(GHLStream):
    """Contacts, incremental on dateUpdated, via POST /contacts/search.

    Sorted ascending by dateUpdated, so the bookmark advances with every record and an
    interrupted run resumes from the last STATE it emitted. The filter is ``gte`` the
    bookmark minus ``lookback_seconds``: contacts sharing the bookmark's dateUpdated are
    read again rather than lost (at-least-once).

    The lookback re-reads contacts older than the incoming bookmark, which singer-sdk's
    ``check_sorted`` would reject, so order is checked here within the run instead.
    """

    name = "contacts"
    path = "/contacts/search"
    http_method = "POST"
    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    replication_key = "dateUpdated"
    is_sorted = True
    check_sorted = False
    records_key = "contacts"
    schema = StreamSchema(SCHEMAS)
    # A STATE every 100 contacts bounds what a failed or killed run re-reads.
    STATE_MSG_FREQUENCY = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Start with no dateUpdated seen in this run."""
        super().__init__(*args, **kwargs)
        self._newest_seen: str | None = None

    @override
    def post_process(
        self,
        row: dict[str, Any],
        context: Context | None = None,
    ) -> dict[str, Any] | None:
        record = super().post_process(row, context)
        updated = None if record is None else record.get(self.replication_key)
        if updated is not None:
            if self._newest_seen is not None and updated < self._newest_seen:
                msg = (
                    f"GHL returned contacts out of dateUpdated order ({updated} after "
                    f"{self._newest_seen}); stopping so the bookmark cannot skip records."
                )
                raise APIResponseError(msg)
            self._newest_seen = updated
        return record

    @cached_property
    def page_size(self) -> int:
        """Rows per search request (pageLimit)."""
        return int(self.config.get("page_size", 100))

    @override
    def get_new_paginator(self) -> SearchAfterPaginator:
        return SearchAfterPaginator(self.page_size, self.records_key)

    def search_floor(self, context: Context | None) -> dt.datetime | None:
        """Lowest dateUpdated to ask for: bookmark minus lookback, never before start_date.

        singer-sdk freezes the starting value (the later of bookmark and start_date) when
        the sync begins, so every page of one run uses the same filter.
        """
        start = self.get_starting_timestamp(context)
        if start is None:
            return None
        floor = start - dt.timedelta(seconds=int(self.config.get("lookback_seconds", 300)))
        start_date = parse_timestamp(self.config.get("start_date"))
        return max(floor, start_date) if start_date else floor

    @override
    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: list[Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "locationId": self.config["location_id"],
            "pageLimit": self.page_size,
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        }
        floor = self.search_floor(context)
        if floor is not None:
            body["filters"] = [
                {
                    "field": "dateUpdated",
                    "operator": "range",
                    "value": {"gte": format_timestamp(floor)},
                }
            ]
        if next_page_token:
            body["searchAfter"] = next_page_token
        return body

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        memory = LookbackMemory(
            self.stream_state,
            dt.timedelta(seconds=int(self.config.get("lookback_seconds", 300))),
            self._naive_tz,
        )
        fresh = (row for row in super().get_records(context) if not memory.already_synced(row))
        for record in self._children_prefetched(fresh):
            self.ghl_tap.raise_if_stopping()
            yield record
            # Resumed only once the SDK has written the record and its children; its
            # post_process normalised the record in place, so this is the emitted dateUpdated.
            memory.remember(record)
        memory.prune()

    def _children_prefetched(self, records: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        """Pass records through while their children are fetched ahead in the pool."""
        prefetcher = self.ghl_tap.prefetcher
        children = [c for c in self.child_streams if isinstance(c, ContactChildStream) and c.selected]
        if not children:
            yield from records
            return
        # Keep contacts ahead of the writer so the pool always has work; batched children
        # (tasks search) need a full batch of ids ahead.
        ahead = max(LOOKAHEAD_PER_WORKER * prefetcher.workers, *(c.prefetch_batch for c in children))
        lookahead: deque[dict[str, Any]] = deque()
        try:
            for record in records:
                for child in children:
                    child.prefetch(prefetcher, record["id"])
                lookahead.append(record)
                if len(lookahead) > ahead:
                    yield lookahead.popleft()
            for child in children:
                child.flush_prefetch(prefetcher)
            yield from lookahead
        except BaseException:
            prefetcher.cancel_all()  # the run is failing or stopping: fetch nothing more
            raise

    @override
    def get_child_context(
        self,
        record: dict[str, Any],
        context: Context | None,
    ) -> dict[str, Any]:
        return {"contactId": record["id"]}


class ContactChildStream(GHLStream):
    """A list endpoint under one contact; GHL does not page these."""

    contact_may_vanish = True

    parent_stream_type = ContactsStream
    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    # One state entry per stream, not one per contact.
    state_partitioning_keys: ClassVar[list[str]] = []
    schema = StreamSchema(SCHEMAS)

    #: Contacts whose lists one background job fetches together.
    prefetch_batch: ClassVar[int] = 1

    @override
    def get_new_paginator(self) -> BaseAPIPaginator[Any] | None:
        return None

    @override
    def _write_state_message(self) -> None:
        """Leave STATE to contacts, which emit one every 100 contacts and at the end.

        singer-sdk writes the whole tap state after every child sync: one STATE per
        contact, each carrying the lookback memory and flushing stdout, so a bulk import
        of 2,000 contacts printed 61 MB of STATE.
        """

    def prefetch(self, prefetcher: ChildPrefetcher, contact_id: str) -> None:
        """Start fetching this contact's list in the pool."""
        context = {"contactId": contact_id}
        prefetcher.submit((self.name, contact_id), partial(self.fetch_all, context))

    def flush_prefetch(self, prefetcher: ChildPrefetcher) -> None:
        """Submit whatever is still collected for a batch."""

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        if context is None:
            return super().get_records(context)
        key = (self.name, context["contactId"])
        prefetcher = self.ghl_tap.prefetcher
        if not prefetcher.is_pending(key):
            self.flush_prefetch(prefetcher)
        fetched = prefetcher.take(key)
        return super().get_records(context) if fetched is None else fetched

    @override
    def post_process(
        self,
        row: dict[str, Any],
        context: Context | None = None,
    ) -> dict[str, Any] | None:
        if context is not None:
            row["contactId"] = context["contactId"]  # GHL omits or nests it on some rows
        return super().post_process(row, context)


class TasksStream(ContactChildStream):
    """Tasks of each contact, one request per contact (``tasks_source: per_contact``)."""

    name = "tasks"
    path = "/contacts/{contactId}/tasks"
    records_key = "tasks"


class TasksSearchStream(ContactChildStream):
    """Tasks of each contact, fetched for 100 contacts at a time.

    POST /locations/{id}/tasks/search filters by a list of contact ids, so one request
    (and a page more when a batch has over 100 tasks) covers 100 contacts.
    """

    name = "tasks"
    path = "/locations/{location_id}/tasks/search"
    http_method = "POST"
    records_key = "tasks"
    prefetch_batch = TASK_SEARCH_BATCH

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Start with no contact ids collected."""
        super().__init__(*args, **kwargs)
        self._collected: list[str] = []

    @override
    def get_new_paginator(self) -> SkipPaginator:
        return SkipPaginator(TASK_SEARCH_PAGE, self.records_key)

    @override
    def prepare_request_payload(self, context: Context | None, next_page_token: int | None) -> dict[str, Any]:
        ids = (context or {}).get("contactIds") or [(context or {})["contactId"]]
        return {"contactId": ids, "limit": TASK_SEARCH_PAGE, "skip": next_page_token or 0}

    @override
    def prefetch(self, prefetcher: ChildPrefetcher, contact_id: str) -> None:
        self._collected.append(contact_id)
        if len(self._collected) >= self.prefetch_batch:
            self.flush_prefetch(prefetcher)

    @override
    def flush_prefetch(self, prefetcher: ChildPrefetcher) -> None:
        ids, self._collected = self._collected, []
        if ids:
            keys: list[Hashable] = [(self.name, contact_id) for contact_id in ids]
            prefetcher.submit_batch(keys, lambda: self._fetch_batch(ids))

    def _fetch_batch(self, ids: list[str]) -> dict[Hashable, list[dict[str, Any]]]:
        found: dict[Hashable, list[dict[str, Any]]] = {}
        for task in self.request_records({"contactIds": ids}):
            contact_id = task.get("contactId") or (ids[0] if len(ids) == 1 else None)
            if contact_id not in ids:
                msg = (
                    f"tasks search returned task {task.get('id')!r} without one of the requested "
                    "contact ids; set tasks_source to per_contact to read tasks contact by contact."
                )
                raise APIResponseError(msg)
            found.setdefault((self.name, contact_id), []).append(task)
        return found

    @override
    def post_process(
        self,
        row: dict[str, Any],
        context: Context | None = None,
    ) -> dict[str, Any] | None:
        if context is not None and row.get("contactId") not in (None, context["contactId"]):
            msg = f"tasks search returned task {row.get('id')!r} under the wrong contact"
            raise APIResponseError(msg)
        return super().post_process(row, context)


class NotesStream(ContactChildStream):
    """Notes of each contact: GET /contacts/{contactId}/notes."""

    name = "notes"
    path = "/contacts/{contactId}/notes"
    records_key = "notes"


class ContactIdsStream(ContactsStream):
    """Every contact of the location, unfiltered; read by AllContactsNotesStream, not emitted."""

    name = "contact_ids"

    @override
    def search_floor(self, context: Context | None) -> dt.datetime | None:
        return None


class AllContactsNotesStream(GHLStream):
    """Notes of every contact on every run (``notes_scope: all_contacts``).

    GHL has no location-wide notes endpoint and a new note may not change its contact's
    dateUpdated, so this is the mode that misses nothing, at one request per contact.
    """

    name = "notes"
    path = "/contacts/{contactId}/notes"
    records_key = "notes"
    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    schema = StreamSchema(SCHEMAS)
    contact_may_vanish = True

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        prefetcher = self.ghl_tap.prefetcher
        ahead: deque[str] = deque()
        try:
            for contact in ContactIdsStream(self._tap).request_records(None):
                contact_id = contact["id"]
                prefetcher.submit((self.name, contact_id), partial(self.fetch_all, {"contactId": contact_id}))
                ahead.append(contact_id)
                if len(ahead) > LOOKAHEAD_PER_WORKER * prefetcher.workers:
                    self.ghl_tap.raise_if_stopping()
                    yield from self._take(prefetcher, ahead.popleft())
            while ahead:
                yield from self._take(prefetcher, ahead.popleft())
        except BaseException:
            prefetcher.cancel_all()
            raise

    def _take(self, prefetcher: ChildPrefetcher, contact_id: str) -> list[dict[str, Any]]:
        rows = prefetcher.take((self.name, contact_id)) or []
        for row in rows:
            row["contactId"] = contact_id
        return rows


class AppointmentsStream(ContactChildStream):
    """Appointments of each contact, one request per contact (``appointments_source: per_contact``)."""

    name = "appointments"
    path = "/contacts/{contactId}/appointments"
    records_key = "events"


class CalendarsStream(GHLStream):
    """The location's calendars; read by CalendarAppointmentsStream, not emitted."""

    name = "calendars"
    path = "/calendars/"
    api_version = CALENDARS_API_VERSION
    records_key = "calendars"
    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"id": {"type": "string"}}}

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:
        return {"locationId": self.config["location_id"]}


class CalendarAppointmentsStream(GHLStream):
    """Appointments of the whole location via GET /calendars/events, calendar by calendar.

    The endpoint filters by start time only, so the first run scans from start_date (or
    five years back) to ``appointments_horizon_days`` ahead, and later runs re-scan from
    ``appointments_resync_days`` back: changes to appointments that started before that
    are picked up by a full refresh.
    """

    name = "appointments"
    path = "/calendars/events"
    api_version = CALENDARS_API_VERSION
    records_key = "events"
    primary_keys: ClassVar[tuple[str, ...]] = ("id",)
    replication_key = "dateUpdated"
    schema = StreamSchema(SCHEMAS)

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:
        window = context or {}
        return {
            "locationId": self.config["location_id"],
            "calendarId": window["calendarId"],
            "startTime": str(window["startTime"]),
            "endTime": str(window["endTime"]),
        }

    def scan_range(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, bool]:
        """Start-time range this run scans, and whether it is the first (full) scan."""
        horizon = now + dt.timedelta(days=int(self.config.get("appointments_horizon_days", 365)))
        if self.stream_state.get("replication_key_value"):
            begin = now - dt.timedelta(days=int(self.config.get("appointments_resync_days", 30)))
            return begin, horizon, False
        if start_date := parse_timestamp(self.config.get("start_date")):
            return start_date, horizon, True
        return now - dt.timedelta(days=5 * 365), horizon, True

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        calendars = [c["id"] for c in CalendarsStream(self._tap).request_records(None) if c.get("id")]
        begin, horizon, first = self.scan_range(dt.datetime.now(dt.UTC))
        widest = dt.timedelta(days=int(self.config.get("appointments_window_days", 400)))
        for calendar_id in calendars:
            yield from self._scan(calendar_id, begin, horizon, widest, first_scan=first)

    def _scan(
        self,
        calendar_id: str,
        begin: dt.datetime,
        horizon: dt.datetime,
        widest: dt.timedelta,
        *,
        first_scan: bool,
    ) -> Iterable[dict[str, Any]]:
        """Walk the range in windows sized so that no answer holds too many events.

        The endpoint does not page, so one busy window would hold a whole calendar in
        memory: windows shrink after a crowded answer and grow (up to ``widest``) after
        a sparse one. Until a calendar's first event, empty answers grow them to
        ``FIRST_SCAN_WINDOW`` at most: they say nothing about how busy what follows is,
        and a window doubled across the empty years before a location's first booking
        would take in its first busy months whole. A first scan starts narrow; re-reads
        start at ``widest``.
        """
        step = min(widest, FIRST_SCAN_WINDOW) if first_scan else widest
        start = begin
        seen_events = False
        while start < horizon:
            # Before the first event the window size is fixed, so the next few windows are
            # known: fetch them at once rather than one round trip after another.
            ahead = (
                min(self.ghl_tap.prefetcher.workers, WINDOWS_AHEAD) if first_scan and not seen_events else 1
            )
            windows = self._windows_ahead(start, step, horizon, ahead)
            for rows in self._fetch_windows(calendar_id, windows):
                self.ghl_tap.raise_if_stopping()
                yield from rows
                seen_events = seen_events or bool(rows)
                step = _next_step(step, len(rows), widest, seen_events=seen_events)
            start = windows[-1][1]

    @staticmethod
    def _windows_ahead(
        start: dt.datetime, step: dt.timedelta, horizon: dt.datetime, count: int
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Up to ``count`` consecutive windows of ``step`` from ``start``, none past ``horizon``."""
        windows: list[tuple[dt.datetime, dt.datetime]] = []
        while start < horizon and len(windows) < count:
            windows.append((start, min(start + step, horizon)))
            start = windows[-1][1]
        return windows

    def _fetch_windows(
        self, calendar_id: str, windows: list[tuple[dt.datetime, dt.datetime]]
    ) -> Iterable[list[dict[str, Any]]]:
        """Answers for ``windows`` in order; several are fetched in the pool at once."""
        if len(windows) == 1:
            ((start, end),) = windows
            yield self.fetch_all(self._window(calendar_id, start, end))
            return
        prefetcher = self.ghl_tap.prefetcher
        keys = [(self.name, calendar_id, _epoch_ms(start)) for start, _ in windows]
        try:
            for key, (start, end) in zip(keys, windows, strict=True):
                context = self._window(calendar_id, start, end)
                prefetcher.submit(key, partial(self.fetch_all, context))
            for key in keys:
                yield prefetcher.take(key) or []
        except BaseException:
            prefetcher.cancel_all()
            raise

    @staticmethod
    def _window(calendar_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        return {"calendarId": calendar_id, "startTime": _epoch_ms(start), "endTime": _epoch_ms(end) - 1}


def _next_step(step: dt.timedelta, count: int, widest: dt.timedelta, *, seen_events: bool) -> dt.timedelta:
    """Shrink after a crowded answer, grow after a sparse one (capped before the first event)."""
    if count > EVENTS_PER_REQUEST:
        return max(MIN_WINDOW, step * EVENTS_PER_REQUEST / count)
    if count < EVENTS_PER_REQUEST // 4:
        ceiling = widest if seen_events else max(step, FIRST_SCAN_WINDOW)
        return min(widest, ceiling, step * 2)
    return step
