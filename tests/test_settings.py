"""Every invalid config gets one clear message naming the setting, and a non-zero exit."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_ghl_contacts.tap import TapGHLContacts
from tests.helpers import run_tap_cli

if TYPE_CHECKING:
    from pathlib import Path

PIT = {"location_id": "loc-1", "access_token": "pit-fake"}
OAUTH = {"location_id": "loc-1", "client_id": "cid", "client_secret": "fake-secret"}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"access_token": "pit-fake"}, "location_id"),
        ({"location_id": "", "access_token": "pit-fake"}, "location_id"),
        ({"location_id": "loc-1"}, "No credentials"),
        ({**PIT, "client_id": "cid", "client_secret": "s"}, "exactly one auth mode"),
        ({**PIT, "refresh_token": "r"}, "exactly one auth mode"),
        ({"location_id": "loc-1", "client_id": "cid"}, "missing: client_secret"),
        ({"location_id": "loc-1", "refresh_token": "r"}, "missing: client_id, client_secret"),
        ({**PIT, "start_date": "last tuesday"}, "start_date"),
        ({**PIT, "api_url": "ftp://example.com"}, "api_url"),
        ({**PIT, "api_url": "http://services.leadconnectorhq.com"}, "https"),
        ({**PIT, "page_size": 0}, "page_size"),
        ({**PIT, "page_size": 501}, "page_size"),
        ({**PIT, "page_size": "100"}, "page_size"),
        ({**PIT, "lookback_seconds": -1}, "lookback_seconds"),
        ({**PIT, "naive_timestamp_timezone": "Mars/Olympus"}, "naive_timestamp_timezone"),
        ({**PIT, "tasks_source": "bulk"}, "tasks_source"),
        ({**PIT, "appointments_source": "ical"}, "appointments_source"),
        ({**PIT, "max_concurrency": 0}, "max_concurrency"),
        ({**PIT, "daily_quota_reserve": -5}, "daily_quota_reserve"),
        ({**PIT, "appointments_window_days": 0}, "appointments_window_days"),
    ],
)
def test_invalid_config_names_the_problem(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        TapGHLContacts(config=config, validate_config=True)
    assert any(named in error for error in caught.value.errors), caught.value.errors


@pytest.mark.parametrize(
    "config", [PIT, OAUTH, {**PIT, "api_url": "http://127.0.0.1:8080"}, {**OAUTH, "refresh_token": "r"}]
)
def test_valid_configs_pass(config: dict[str, Any]) -> None:
    TapGHLContacts(config=config, validate_config=True)


def test_secrets_are_marked_for_redaction() -> None:
    properties = TapGHLContacts.config_jsonschema["properties"]
    assert {k for k, v in properties.items() if v.get("secret")} == {
        "access_token",
        "client_secret",
        "refresh_token",
    }


def test_cli_rejects_a_bad_config_in_one_message_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**PIT, "client_secret": "fake-secret-value", "page_size": 9000}))
    done = run_tap_cli("--config", str(config))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "exactly one auth mode" in done.stderr
    assert "page_size must be a whole number from 1 to 500" in done.stderr
    assert "fake-secret-value" not in done.stderr + done.stdout
    assert "pit-fake" not in done.stderr + done.stdout


def test_cli_discovers_the_four_streams_without_config() -> None:
    done = run_tap_cli("--discover")
    assert done.returncode == 0, done.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(done.stdout)["streams"]}
    assert set(streams) == {"contacts", "tasks", "notes", "appointments"}
    assert streams["contacts"]["replication_key"] == "dateUpdated"
    assert all(s["key_properties"] == ["id"] for s in streams.values())
