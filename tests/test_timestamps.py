"""Every timestamp form GHL sends becomes one RFC 3339 UTC form."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from tap_ghl_contacts.timestamps import normalize_record, normalize_timestamp, timestamp_fields


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-07-02T05:18:26.704Z", "2021-07-02T05:18:26.704000Z"),
        ("2021-07-02T05:18:26Z", "2021-07-02T05:18:26.000000Z"),
        ("2023-09-25T16:00:00+05:30", "2023-09-25T10:30:00.000000Z"),
        ("2021-07-16 11:00:00", "2021-07-16T11:00:00.000000Z"),
        ("1990-01-01", "1990-01-01T00:00:00.000000Z"),
        (1625203106704, "2021-07-02T05:18:26.704000Z"),
        ("1625203106704", "2021-07-02T05:18:26.704000Z"),
        (Decimal("1625203106704.5"), "2021-07-02T05:18:26.704500Z"),
        (-16000000000, "1969-06-29T19:33:20.000000Z"),  # a birth date just before 1970
        (0, "1970-01-01T00:00:00.000000Z"),
        (None, None),
        ("", None),
    ],
)
def test_forms_normalise_to_one_utc_form(raw: object, expected: str | None) -> None:
    assert normalize_timestamp(raw) == expected


def test_zoneless_times_read_in_the_configured_zone() -> None:
    ny = zoneinfo.ZoneInfo("America/New_York")
    assert normalize_timestamp("2024-03-01 09:30:00", ny) == "2024-03-01T14:30:00.000000Z"


def test_output_sorts_as_strings_in_time_order() -> None:
    moments = ["2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456Z", 1704067199999]
    normalised = [normalize_timestamp(m) for m in moments]
    as_times = sorted(normalised, key=lambda s: dt.datetime.fromisoformat(str(s)))
    assert sorted(normalised, key=str) == as_times


@pytest.mark.parametrize("bad", ["not a date", True, [1], "2024-13-45"])
def test_non_timestamps_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r".+"):
        normalize_timestamp(bad)


def test_nested_fields_are_found_and_bad_values_reported_by_path() -> None:
    schema = {
        "properties": {
            "when": {"type": ["string", "null"], "format": "date-time"},
            "name": {"type": "string"},
            "items": {
                "type": ["array", "null"],
                "items": {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}},
            },
        }
    }
    record = {"when": 0, "name": "x", "items": [{"at": "2024-01-01 00:00:00"}, {"at": "garbage"}]}
    bad = normalize_record(record, timestamp_fields(schema))
    assert record == {
        "when": "1970-01-01T00:00:00.000000Z",
        "name": "x",
        "items": [{"at": "2024-01-01T00:00:00.000000Z"}, {"at": None}],
    }
    assert bad == [("items[1].at", "garbage")]
