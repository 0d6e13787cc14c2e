"""One timestamp form for everything the tap emits.

GHL mixes ISO 8601 strings with and without offsets, epoch milliseconds (as numbers
or digit strings) and ``YYYY-MM-DD HH:MM:SS``. Bookmarks are compared as strings by
singer-sdk, so every timestamp leaves the tap as fixed-width RFC 3339 UTC with
microseconds: ``2024-05-01T10:00:00.000000Z``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

UTC = dt.UTC
UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

_EPOCH_DIGITS = re.compile(r"-?\d+(\.\d+)?")


def format_timestamp(value: dt.datetime) -> str:
    """Render an aware datetime in the tap's one output form."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: Any, naive_tz: dt.tzinfo = UTC) -> dt.datetime | None:  # noqa: ANN401
    """Parse any timestamp form GHL sends; ``None`` and ``""`` mean no value.

    A timestamp without a zone is read in ``naive_tz``. Raises ``ValueError`` for
    anything that is not a timestamp, so bad data is never emitted as good.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        msg = "a boolean is not a timestamp"
        raise ValueError(msg)  # noqa: TRY004  (callers handle one error type)
    if isinstance(value, (int, float, decimal.Decimal)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        msg = f"a {type(value).__name__} is not a timestamp"
        raise ValueError(msg)  # noqa: TRY004
    text = value.strip()
    if _EPOCH_DIGITS.fullmatch(text):
        return _from_epoch(float(text))
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_tz)
    return parsed


def normalize_timestamp(value: Any, naive_tz: dt.tzinfo = UTC) -> str | None:  # noqa: ANN401
    """Parse ``value`` and render it in the tap's output form."""
    parsed = parse_timestamp(value, naive_tz)
    return None if parsed is None else format_timestamp(parsed)


def _from_epoch(milliseconds: float) -> dt.datetime:
    """GHL's epoch numbers are milliseconds (a birth date in 1969 is a small negative)."""
    try:
        return UTC_EPOCH + dt.timedelta(milliseconds=milliseconds)
    except (OverflowError, OSError) as exc:
        msg = "epoch value out of range"
        raise ValueError(msg) from exc


@dataclass(frozen=True, slots=True)
class TimestampField:
    """Where a timestamp lives in a record: the field, or objects below it."""

    name: str
    is_timestamp: bool
    children: tuple[TimestampField, ...] = ()


def timestamp_fields(schema: dict[str, Any]) -> tuple[TimestampField, ...]:
    """Find every ``format: date-time`` property, nested ones included, once per stream."""
    found: list[TimestampField] = []
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("format") == "date-time":
            found.append(TimestampField(name, is_timestamp=True))
            continue
        nested = prop.get("items", prop) if _is_array(prop) else prop
        children = timestamp_fields(nested) if isinstance(nested, dict) else ()
        if children:
            found.append(TimestampField(name, is_timestamp=False, children=children))
    return tuple(found)


def _is_array(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


def normalize_record(
    record: dict[str, Any],
    fields: tuple[TimestampField, ...],
    naive_tz: dt.tzinfo = UTC,
) -> list[tuple[str, Any]]:
    """Normalise the timestamps of one record in place.

    Values that are not timestamps become ``None``; each comes back with its path (such
    as ``items[1].at``) so the caller can keep the original value elsewhere and report it.
    """
    bad: list[tuple[str, Any]] = []
    for field in fields:
        if field.name not in record:
            continue
        value = record[field.name]
        if field.is_timestamp:
            try:
                record[field.name] = normalize_timestamp(value, naive_tz)
            except ValueError:
                record[field.name] = None
                bad.append((field.name, value))
            continue
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, dict):
                prefix = field.name if index is None else f"{field.name}[{index}]"
                bad.extend(
                    (f"{prefix}.{path}", raw)
                    for path, raw in normalize_record(item, field.children, naive_tz)
                )
    return bad
