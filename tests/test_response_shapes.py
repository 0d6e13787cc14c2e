"""Unexpected response shapes neither crash the tap nor drop data silently."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tap_ghl_contacts.errors import APIResponseError
from tests.helpers import pit_config, run_sync, run_sync_catching, selecting
from tests.sandboxes import sandbox_with
from tests.scenarios.shapes import odd_shapes_are_kept

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import requests_mock

    from tap_ghl_contacts.sandbox import SandboxAPI


def test_odd_values_are_kept_in_extra_and_logged_without_their_values(tmp_path: Path) -> None:
    transcript = odd_shapes_are_kept(tmp_path)
    assert transcript.leaks() == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"message": "ok"}, "without a 'notes' list"),
        ({"notes": None}, "without a 'notes' list"),
        ({"notes": {"id": "n1"}}, "without a 'notes' list"),
        ({"notes": ["n1"]}, "non-object item"),
        ({"notes": [{"body": "no id"}]}, "has no id"),
        ({"notes": [{"id": 7, "body": "numeric id"}]}, "has a id of type int"),
    ],
)
def test_a_child_answer_of_the_wrong_shape_stops_the_run_with_a_clear_error(
    mock_sandbox: Callable[[SandboxAPI], str],
    mocked_http: requests_mock.Mocker,
    body: dict[str, object],
    problem: str,
) -> None:
    sandbox = sandbox_with(5)
    url = mock_sandbox(sandbox)
    mocked_http.get(f"{url}/contacts/c000003/notes", json=body)
    out, failure = run_sync_catching(pit_config(sandbox, url), catalog=selecting("contacts", "notes"))
    assert isinstance(failure, APIResponseError)
    assert problem in str(failure)
    # Everything before the bad answer was delivered, and the last STATE precedes it.
    assert [r["id"] for r in out.records("contacts")][:3] == ["c000000", "c000001", "c000002"]
    assert "c000003" not in {r["contactId"] for r in out.records("notes")}


def test_a_search_answer_with_null_contacts_is_an_error_not_the_end(
    mock_sandbox: Callable[[SandboxAPI], str], mocked_http: requests_mock.Mocker
) -> None:
    sandbox = sandbox_with(5, children=False)
    url = mock_sandbox(sandbox)
    mocked_http.post(f"{url}/contacts/search", json={"contacts": None, "total": 5})
    _, failure = run_sync_catching(pit_config(sandbox, url), catalog=selecting("contacts"))
    assert isinstance(failure, APIResponseError)
    assert "without a 'contacts' list" in str(failure)


def test_nulls_everywhere_are_emitted_as_nulls(mock_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(3, children=False)
    contact = sandbox.account.contacts["c000001"]
    for key in list(contact):
        if key not in {"id", "dateUpdated", "locationId"}:
            contact[key] = None
    out = run_sync(pit_config(sandbox, mock_sandbox(sandbox)), catalog=selecting("contacts"))
    record = next(r for r in out.records("contacts") if r["id"] == "c000001")
    assert "_extra" not in record
    assert all(record[key] is None for key in contact if key not in {"id", "dateUpdated", "locationId"})


@pytest.mark.parametrize("status", [400, 403, 422])
def test_error_messages_carry_ghl_words_but_not_the_contact_data_in_the_body(
    mock_sandbox: Callable[[SandboxAPI], str],
    mocked_http: requests_mock.Mocker,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    sandbox = sandbox_with(3, children=False)
    url = mock_sandbox(sandbox)
    private = {"email": "jane.private@example.com", "phone": "+15550001111", "firstName": "Jane"}
    body = {"statusCode": status, "message": "Request rejected", "traceId": "trace-42", "contact": private}
    mocked_http.post(f"{url}/contacts/search", status_code=status, json=body)
    _, failure = run_sync_catching(pit_config(sandbox, url), catalog=selecting("contacts"))
    assert failure is not None
    assert "Request rejected" in str(failure)
    assert "trace-42" in str(failure)
    everything = str(failure) + caplog.text
    assert [value for value in private.values() if value in everything] == []
