"""``tap-ghl-contacts-auth``: the first step of every OAuth user.

``url`` prints GHL's consent-screen URL with the scopes the tap needs; ``exchange``
trades the code GHL appends to the redirect URI for tokens and writes them to the
tap's token store, so the tap's config needs no refresh token at all. Secrets are
read from the tap's config file or the environment, never from the command line
(where ``ps`` and shell history would show them), and are never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
import requests

from tap_ghl_contacts import settings
from tap_ghl_contacts.auth import (
    TokenSet,
    TokenStore,
    default_token_store_path,
    fingerprint,
    parse_token_response,
    post_token_request,
)
from tap_ghl_contacts.errors import DeadGrantError, TapGHLError

CONSENT_URL = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
WHITE_LABEL_CONSENT_URL = "https://marketplace.leadconnectorhq.com/v2/oauth/chooselocation"
# Read-only scopes for the tap's streams, now and for the location-wide endpoints.
SCOPES = (
    "contacts.readonly",
    "calendars.readonly",
    "calendars/events.readonly",
    "locations/tasks.readonly",
    "locations/customFields.readonly",
    "locations/tags.readonly",
)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"Cannot read the config file {path}: {exc}"
        raise click.ClickException(msg) from None
    if not isinstance(config, dict):
        msg = f"The config file {path} does not hold a JSON object."
        raise click.ClickException(msg)
    return config


def _setting(config: dict[str, Any], key: str, env: str, given: str | None = None) -> str:
    value = given or os.environ.get(env) or config.get(key)
    if not value:
        msg = f"{key} is needed: put it in the config file (--config) or set {env}."
        raise click.UsageError(msg)
    return str(value)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The tap's config JSON (client_id, client_secret, location_id, token_store_path, api_url).",
)


@click.group()
def main() -> None:
    """Authorise tap-ghl-contacts with your GHL Marketplace app (OAuth)."""


@main.command()
@config_option
@click.option("--client-id", help="Marketplace app client ID (or GHL_CLIENT_ID).")
@click.option("--redirect-uri", required=True, help="A redirect URI registered on the app.")
@click.option("--white-label", is_flag=True, help="Use the white-label consent screen.")
def url(config_path: Path | None, client_id: str | None, redirect_uri: str, *, white_label: bool) -> None:
    """Print the consent-screen URL to open in a browser."""
    config = _load_config(config_path)
    query = urlencode(
        {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "client_id": _setting(config, "client_id", "GHL_CLIENT_ID", client_id),
            "scope": " ".join(SCOPES),
        }
    )
    base = WHITE_LABEL_CONSENT_URL if white_label else CONSENT_URL
    click.echo(f"{base}?{query}")


@main.command()
@config_option
@click.option("--client-id", help="Marketplace app client ID (or GHL_CLIENT_ID).")
@click.option("--redirect-uri", required=True, help="The redirect URI used for the consent screen.")
@click.option(
    "--code", help="The code GHL appended to the redirect URI (or GHL_AUTH_CODE; prompted if absent)."
)
def exchange(config_path: Path | None, client_id: str | None, redirect_uri: str, code: str | None) -> None:
    """Trade a consent code for tokens and write them to the token store."""
    config = _load_config(config_path)
    client = _setting(config, "client_id", "GHL_CLIENT_ID", client_id)
    secret = _setting(config, "client_secret", "GHL_CLIENT_SECRET")
    auth_code = code or os.environ.get("GHL_AUTH_CODE") or click.prompt("Authorization code", hide_input=True)
    api_url = str(config.get("api_url") or settings.DEFAULT_API_URL).rstrip("/")
    problems = settings.problems({"api_url": api_url, "access_token": "-"})
    if problems:
        raise click.UsageError(problems[0])
    form = {
        "client_id": client,
        "client_secret": secret,
        "grant_type": "authorization_code",
        "code": auth_code,
        "redirect_uri": redirect_uri,
        "user_type": "Location",
    }
    expected_location = config.get("location_id")
    try:
        response = post_token_request(requests.Session(), f"{api_url}/oauth/token", form)
        payload = parse_token_response(response, client_id=client, location_id=str(expected_location or "?"))
    except DeadGrantError:
        msg = (
            "GHL rejected the authorization code. Codes are single-use and expire within "
            "minutes, and redirect_uri must match the one used for the consent screen: run "
            "'tap-ghl-contacts-auth url' again and exchange the new code straight away."
        )
        raise click.ClickException(msg) from None
    except TapGHLError as exc:
        raise click.ClickException(str(exc)) from None
    location = payload.get("locationId")
    if not location:
        msg = "GHL issued a token without a locationId: authorise with a Sub-Account (Location) app."
        raise click.ClickException(msg)
    if expected_location and location != expected_location:
        msg = f"You authorised location {location}, but the config's location_id is {expected_location}."
        raise click.ClickException(msg)
    store_path = Path(
        str(config.get("token_store_path") or default_token_store_path(client, location))
    ).expanduser()
    store = TokenStore(store_path)
    try:
        with store.locked():
            previous = store.load(client, location)
            superseded = (
                []
                if previous is None
                else [*previous.spent_refresh_tokens, fingerprint(previous.refresh_token)]
            )
            if config.get("refresh_token"):
                superseded.append(fingerprint(str(config["refresh_token"])))
            store.save(client, location, TokenSet.from_token_response(payload, spent=superseded))
    except TapGHLError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Stored tokens for location {location} in {store_path}.")
    click.echo(
        "The tap's config needs client_id, client_secret, location_id and, if you set "
        "one, the same token_store_path."
    )


if __name__ == "__main__":
    sys.exit(main())
