"""Token rotation under stress (tests/scenarios/rotation.py), and the sandbox switch it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

from tests.sandboxes import sandbox_with
from tests.scenarios import served
from tests.scenarios.rotation import (
    killed_right_after_a_refresh,
    many_consecutive_runs,
    processes_started_at_once,
    revoked_mid_stream,
    rotated_but_the_answer_was_lost,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_many_consecutive_runs_each_refresh_once_and_keep_the_live_token(tmp_path: Path) -> None:
    assert many_consecutive_runs(tmp_path).leaks() == []


def test_processes_started_at_once_never_spend_a_token_twice(tmp_path: Path) -> None:
    assert processes_started_at_once(tmp_path).leaks() == []


def test_a_run_killed_right_after_a_refresh_leaves_a_usable_store(tmp_path: Path) -> None:
    assert killed_right_after_a_refresh(tmp_path).leaks() == []


def test_a_rotation_the_tap_never_heard_of_says_how_to_reauthorise(tmp_path: Path) -> None:
    assert rotated_but_the_answer_was_lost(tmp_path).leaks() == []


def test_a_grant_revoked_mid_stream_says_how_to_reauthorise(tmp_path: Path) -> None:
    assert revoked_mid_stream(tmp_path).leaks() == []


def test_the_sandbox_can_rotate_a_refresh_token_and_then_drop_the_answer() -> None:
    sandbox = sandbox_with(1)
    first = sandbox.issue_refresh_token()
    credentials = {
        "client_id": sandbox.credentials.client_id,
        "client_secret": sandbox.credentials.client_secret,
        "grant_type": "refresh_token",
    }
    sandbox.drop_token_answers = 1
    with served(sandbox) as url:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{url}/oauth/token", data={**credentials, "refresh_token": first}, timeout=10)
        assert first not in sandbox.refresh_tokens  # spent all the same
        (rotated,) = sandbox.refresh_tokens  # the answer nobody received
        retry = requests.post(f"{url}/oauth/token", data={**credentials, "refresh_token": first}, timeout=10)
        assert retry.status_code == 400
        assert retry.json()["error"] == "invalid_grant"
        answered = requests.post(
            f"{url}/oauth/token", data={**credentials, "refresh_token": rotated}, timeout=10
        )
        assert answered.status_code == 200  # one answer dropped, then back to normal
    assert sandbox.drop_token_answers == 0
    assert [r["status"] for r in sandbox.requests] == [0, 400, 200]
