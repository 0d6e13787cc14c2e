"""Remember the contacts already synced inside the lookback window, across runs.

Each run re-reads ``lookback_seconds`` before the bookmark, because GHL's search index can
lag a write by a few seconds. Without a memory, every run (even one with no changes)
re-emits those contacts and re-fetches their tasks and notes. The memory lives in the
contacts stream's state: contact id -> the dateUpdated that was synced. A re-read contact
whose dateUpdated is unchanged is skipped; anything not remembered is read again, so a
truncated or missing memory only costs requests, never records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tap_ghl_contacts.timestamps import format_timestamp, normalize_timestamp, parse_timestamp

if TYPE_CHECKING:
    import datetime as dt

#: State key of the memory inside ``bookmarks.contacts``.
STATE_KEY = "synced_in_lookback"
#: Most contacts remembered; a bulk import sharing one dateUpdated beyond this is re-read.
LIMIT = 1000
#: Contacts remembered between two prunes; stale entries in between are harmless.
PRUNE_EVERY = 64


class LookbackMemory:
    """Ids and dateUpdated values of contacts synced within the lookback of the newest one.

    Entries are kept in dateUpdated order (contacts arrive sorted), so pruning the ones
    that fell out of the window only ever looks at the front.
    """

    def __init__(self, stream_state: dict[str, Any], lookback: dt.timedelta, naive_tz: dt.tzinfo) -> None:
        """Adopt the memory stored in ``stream_state`` (which it then keeps up to date)."""
        stored = stream_state.get(STATE_KEY)
        entries = stored if isinstance(stored, dict) else {}
        self._entries: dict[str, str] = {
            str(key): value for key, value in entries.items() if isinstance(value, str)
        }
        self._previous = dict(self._entries)
        self._lookback = lookback
        self._naive_tz = naive_tz
        self._newest: str | None = None
        self._unpruned = 0
        stream_state[STATE_KEY] = self._entries

    def already_synced(self, row: dict[str, Any]) -> bool:
        """Whether a previous run synced this contact as it is now."""
        synced = self._previous.get(str(row.get("id")))
        return synced is not None and synced == normalize_timestamp(row.get("dateUpdated"), self._naive_tz)

    def remember(self, record: dict[str, Any]) -> None:
        """Note a contact whose record and children have been written."""
        updated = record.get("dateUpdated")
        if not isinstance(updated, str):
            return
        key = str(record.get("id"))
        self._entries.pop(key, None)
        self._entries[key] = updated
        if self._newest is None or updated > self._newest:
            self._newest = updated
        self._unpruned += 1
        if self._unpruned >= PRUNE_EVERY or len(self._entries) > LIMIT:
            self.prune()

    def prune(self) -> None:
        """Forget what fell out of the window (done every few contacts: parsing is the cost)."""
        self._unpruned = 0
        newest = parse_timestamp(self._newest) if self._newest else None
        floor = None if newest is None else format_timestamp(newest - self._lookback)
        while self._entries:
            oldest_key = next(iter(self._entries))
            too_old = floor is not None and self._entries[oldest_key] < floor
            if not too_old and len(self._entries) <= LIMIT:
                return
            del self._entries[oldest_key]
