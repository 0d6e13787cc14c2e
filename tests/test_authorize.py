"""tap-ghl-contacts-auth: the consent URL, and trading a code for stored tokens."""

from __future__ import annotations

import re
import stat
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from click.testing import CliRunner, Result

from tap_ghl_contacts.auth import REAUTHORISE_HINT
from tap_ghl_contacts.authorize import main
from tests.helpers import oauth_config, run_sync, selecting, write_config
from tests.sandboxes import sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI

REDIRECT = "https://example.com/oauth/callback"


def exchange(config_file: Path, code: str) -> Result:
    """Run ``tap-ghl-contacts-auth exchange`` with a config file and a code."""
    return CliRunner().invoke(
        main, ["exchange", "--config", str(config_file), "--redirect-uri", REDIRECT, "--code", code]
    )


def test_url_asks_for_the_scopes_the_tap_needs() -> None:
    done = CliRunner().invoke(main, ["url", "--client-id", "cid", "--redirect-uri", REDIRECT])
    assert done.exit_code == 0, done.output
    link = urlsplit(done.output.strip())
    assert (
        f"{link.scheme}://{link.netloc}{link.path}"
        == "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
    )
    query = parse_qs(link.query)
    assert query["client_id"] == ["cid"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["response_type"] == ["code"]
    assert {"contacts.readonly", "calendars/events.readonly", "locations/tasks.readonly"} <= set(
        query["scope"][0].split()
    )


def test_exchange_stores_tokens_the_tap_then_uses(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(2)
    store = tmp_path / "store.json"
    config = oauth_config(sandbox, serve_sandbox(sandbox), store)  # no refresh_token at all
    config_file = write_config(tmp_path, config)

    done = exchange(config_file, sandbox.issue_auth_code())
    assert done.exit_code == 0, done.output
    assert f"Stored tokens for location {sandbox.location_id}" in done.output
    assert sandbox.credentials.client_secret not in done.output
    assert "sandbox-access" not in done.output
    assert "sandbox-refresh" not in done.output
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    out = run_sync(config, catalog=selecting("contacts"))
    assert len(out.records("contacts")) == 2
    assert sandbox.token_grants == 1  # the exchange only; the stored access token was fresh


def test_exchange_with_a_bad_code_fails_clearly(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    config_file = write_config(
        tmp_path, oauth_config(sandbox, serve_sandbox(sandbox), tmp_path / "store.json")
    )
    done = exchange(config_file, "not-a-code")
    assert done.exit_code == 1
    assert "GHL rejected the authorization code" in done.output
    assert isinstance(done.exception, SystemExit)
    assert not (tmp_path / "store.json").exists()


def test_exchange_refuses_a_grant_for_another_location(
    serve_sandbox: Callable[[SandboxAPI], str], tmp_path: Path
) -> None:
    sandbox = sandbox_with(1)
    config = oauth_config(
        sandbox, serve_sandbox(sandbox), tmp_path / "store.json", location_id="some-other-location"
    )
    config_file = write_config(tmp_path, config)
    done = exchange(config_file, sandbox.issue_auth_code())
    assert done.exit_code == 1
    assert "the config's location_id is some-other-location" in done.output


def test_exchange_needs_a_client_secret_from_config_or_env() -> None:
    done = CliRunner().invoke(
        main,
        ["exchange", "--client-id", "cid", "--redirect-uri", REDIRECT, "--code", "x"],
        env={"GHL_CLIENT_SECRET": ""},
    )
    assert done.exit_code == 2
    assert "client_secret is needed" in done.output


def test_the_reauthorise_hint_gives_commands_that_run(tmp_path: Path) -> None:
    sandbox = sandbox_with(1)
    config_file = write_config(
        tmp_path, oauth_config(sandbox, "https://unused.ghl.test", tmp_path / "s.json")
    )
    commands = re.findall(r"'(tap-ghl-contacts-auth [^']+)'", REAUTHORISE_HINT)
    assert [c.split()[1] for c in commands] == ["url", "exchange"]
    words = commands[0].replace("CONFIG", str(config_file)).replace("URI", REDIRECT).split()[1:]
    result = CliRunner().invoke(main, words)
    assert result.exit_code == 0, result.output
    assert "redirect_uri=" in result.output
    exchange_words = commands[1].split()[1:]
    assert {"--config", "--redirect-uri", "--code"} <= set(exchange_words)
