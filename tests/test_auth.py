"""Both auth modes over real HTTP: PIT, and OAuth with single-use rotating refresh tokens."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tap_ghl_contacts.auth import SPENT_HISTORY, RotatingOAuth, TokenStore, default_token_store_path
from tap_ghl_contacts.errors import AuthError, DeadGrantError, TokenStoreError
from tap_ghl_contacts.tap import TapGHLContacts
from tests.helpers import (
    oauth_config,
    pit_config,
    run_sync,
    run_tap_cli,
    run_tap_cli_concurrently,
    selecting,
    write_config,
)
from tests.sandboxes import sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI

CONTACTS_ONLY = selecting("contacts")


def stored_entry(store: Path, sandbox: SandboxAPI) -> dict[str, Any]:
    content = json.loads(store.read_text())
    entry: dict[str, Any] = content["tokens"][f"{sandbox.credentials.client_id}:{sandbox.location_id}"]
    return entry


def age_store(store: Path) -> None:
    """Let a day pass: every stored access token has expired."""
    content = json.loads(store.read_text())
    for entry in content["tokens"].values():
        entry["expires_at"] = entry["obtained_at"] = 0
    store.write_text(json.dumps(content))


def test_pit_is_sent_as_bearer_with_the_version_header(serve_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(3)
    out = run_sync(pit_config(sandbox, serve_sandbox(sandbox)))
    assert len(out.records("contacts")) == 3
    for call in sandbox.api_calls():
        headers = {k.lower(): v for k, v in call["headers"].items()}
        assert headers["authorization"] == f"Bearer {sandbox.credentials.pit}"
        assert headers["version"] == ("2021-04-15" if call["path"].startswith("/calendars") else "2021-07-28")
    assert sandbox.token_grants == 0


def test_first_oauth_run_refreshes_and_persists_the_rotated_token(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(3)
    initial = sandbox.issue_refresh_token()
    store = tmp_path / "tokens" / "store.json"
    out = run_sync(
        oauth_config(sandbox, serve_sandbox(sandbox), store, refresh_token=initial), catalog=CONTACTS_ONLY
    )

    assert len(out.records("contacts")) == 3
    assert sandbox.token_grants == 1
    entry = stored_entry(store, sandbox)
    assert entry["refresh_token"] in sandbox.refresh_tokens  # the newest, still-live token
    assert entry["refresh_token"] != initial
    assert initial not in store.read_text()  # spent tokens are remembered only as hashes
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert not list(store.parent.glob("*.tmp"))


def test_a_fresh_tap_uses_the_stored_rotated_token(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(3)
    initial = sandbox.issue_refresh_token()
    store = tmp_path / "store.json"
    config = oauth_config(sandbox, serve_sandbox(sandbox), store, refresh_token=initial)
    for run in range(1, 4):
        out = run_sync(config, catalog=CONTACTS_ONLY)  # a new Tap instance each time
        assert len(out.records("contacts")) == 3
        assert sandbox.token_grants == run
        age_store(store)
    assert all(r["status"] == 200 for r in sandbox.requests)  # never a dead token spent


def test_a_fresh_stored_access_token_is_reused_without_refreshing(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(2)
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", refresh_token=sandbox.issue_refresh_token()
    )
    run_sync(config, catalog=CONTACTS_ONLY)
    run_sync(config, catalog=CONTACTS_ONLY)
    assert sandbox.token_grants == 1


def test_a_401_leads_to_exactly_one_refresh_and_one_retry(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(5)
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", refresh_token=sandbox.issue_refresh_token()
    )
    run_sync(config, catalog=CONTACTS_ONLY)
    sandbox.revoke_access_tokens()  # e.g. revoked in GHL while the stored token looked fresh
    sandbox.requests.clear()

    out = run_sync(config, catalog=CONTACTS_ONLY)
    assert len(out.records("contacts")) == 5
    assert sandbox.token_grants == 2
    assert [r["status"] for r in sandbox.requests] == [401, 200, 200]  # search, refresh, search again


def test_a_401_after_refreshing_is_a_clear_error(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(2)

    sandbox.reject_all_tokens = True
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", refresh_token=sandbox.issue_refresh_token()
    )
    with pytest.raises(AuthError, match="freshly refreshed OAuth access token"):
        run_sync(config, catalog=CONTACTS_ONLY)
    assert sandbox.token_grants == 2  # the first token, then exactly one refresh after the 401
    assert len(sandbox.api_calls("/contacts/search")) == 2  # the request and exactly one retry


def test_a_rejected_pit_is_a_clear_error(serve_sandbox: Callable[[SandboxAPI], str]) -> None:
    sandbox = sandbox_with(1)
    with pytest.raises(AuthError, match="Private Integration"):
        run_sync(pit_config(sandbox, serve_sandbox(sandbox), access_token="pit-fake-rotated-away"))
    assert len(sandbox.api_calls()) == 1  # a static token is not retried


def test_a_dead_refresh_token_says_the_grant_is_dead(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", refresh_token="fake-refresh-long-gone"
    )
    with pytest.raises(DeadGrantError, match=r"grant .* is dead.*tap-ghl-contacts-auth url"):
        run_sync(config)
    assert not (tmp_path / "store.json").exists()


def test_a_newly_pasted_refresh_token_wins_over_an_old_chain(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    url, store = serve_sandbox(sandbox), tmp_path / "store.json"
    run_sync(
        oauth_config(sandbox, url, store, refresh_token=sandbox.issue_refresh_token()), catalog=CONTACTS_ONLY
    )
    age_store(store)
    old_chain = stored_entry(store, sandbox)["refresh_token"]

    pasted = sandbox.issue_refresh_token()  # the user re-authorised and put the new token in config
    run_sync(oauth_config(sandbox, url, store, refresh_token=pasted), catalog=CONTACTS_ONLY)
    assert pasted not in sandbox.refresh_tokens  # spent: it was used first
    assert old_chain in sandbox.refresh_tokens  # the old chain was left alone


def test_a_dead_config_token_falls_back_to_the_stored_chain(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    url, store = serve_sandbox(sandbox), tmp_path / "store.json"
    run_sync(
        oauth_config(sandbox, url, store, refresh_token=sandbox.issue_refresh_token()), catalog=CONTACTS_ONLY
    )
    age_store(store)
    out = run_sync(
        oauth_config(sandbox, url, store, refresh_token="fake-refresh-stale-copy"), catalog=CONTACTS_ONLY
    )
    assert len(out.records("contacts")) == 1
    assert [r["status"] for r in sandbox.requests if r["path"] == "/oauth/token"] == [200, 400, 200]


def test_two_processes_at_once_never_spend_the_same_refresh_token(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(20)
    store = tmp_path / "store.json"
    config = oauth_config(sandbox, serve_sandbox(sandbox), store, refresh_token=sandbox.issue_refresh_token())
    config_file = write_config(tmp_path, config)
    results = run_tap_cli_concurrently(2, "--config", str(config_file))
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    # One refreshed under the lock; the other waited, then used the token it stored.
    assert [r["status"] for r in sandbox.requests if r["path"] == "/oauth/token"] == [200]
    assert stored_entry(store, sandbox)["refresh_token"] in sandbox.refresh_tokens
    assert all(r["status"] == 200 for r in sandbox.requests)

    age_store(store)  # a day later both start again and both must refresh, one after the other
    results = run_tap_cli_concurrently(2, "--config", str(config_file))
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert [r["status"] for r in sandbox.requests if r["path"] == "/oauth/token"] == [200, 200]


def test_cli_reports_a_dead_grant_in_one_line_without_secrets(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", refresh_token="fake-refresh-long-gone"
    )
    config_file = write_config(tmp_path, config)
    done = run_tap_cli("--config", str(config_file))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "is dead and cannot be refreshed" in done.stderr
    for secret in (sandbox.credentials.client_secret, "fake-refresh-long-gone"):
        assert secret not in done.stderr
        assert secret not in done.stdout


def test_default_store_is_per_user_and_keyed_by_client_and_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = default_token_store_path("client/1", "loc 2")
    assert path == tmp_path / "tap-ghl-contacts" / "tokens" / "client_1--loc_2.json"


def test_a_corrupt_store_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "store.json"
    store.write_text("{not json")
    with pytest.raises(TokenStoreError, match="not valid JSON"):
        TokenStore(store).load("c", "l")


def test_an_unreadable_store_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "store.json"
    store.mkdir()  # unreadable as a file, even for root
    with pytest.raises(TokenStoreError, match="Cannot read the token store"):
        TokenStore(store).load("c", "l")


def test_the_config_token_is_known_however_many_refreshes_follow(
    mock_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    store = tmp_path / "store.json"
    config = oauth_config(sandbox, mock_sandbox(sandbox), store, refresh_token=sandbox.issue_refresh_token())
    for _ in range(SPENT_HISTORY + 5):  # more refreshes than the store keeps digests of
        TapGHLContacts(config=config).authenticator(requests.Request("GET", "https://x.test").prepare())
        age_store(store)
    statuses = [r["status"] for r in sandbox.requests if r["path"] == "/oauth/token"]
    assert statuses == [200] * (SPENT_HISTORY + 5)  # the old config token is never sent again
    sandbox.access_token_ttl = 3600
    TapGHLContacts(config=config).authenticator(requests.Request("GET", "https://x.test").prepare())
    fresh = TapGHLContacts(config=config).authenticator
    fresh(requests.Request("GET", "https://x.test").prepare())
    assert isinstance(fresh, RotatingOAuth)
    assert fresh.refresh_count == 0  # a fresh stored token is shared, not refreshed again
