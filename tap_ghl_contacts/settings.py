"""Settings: their schema, and the checks JSON Schema cannot express.

Setting names are a public interface (Meltano projects and env vars use them).
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import zoneinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_API_URL = "https://services.leadconnectorhq.com"
MAX_PAGE_SIZE = 500

OAUTH_SETTINGS = ("client_id", "client_secret", "refresh_token")

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "location_id",
        th.StringType,
        required=True,
        title="Location ID",
        description="The GHL sub-account (location) to read.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Access token",
        description=(
            "A Private Integration Token of the sub-account (or any location-scoped "
            "access token), sent as a static bearer token. Use this or the OAuth settings."
        ),
    ),
    th.Property(
        "client_id",
        th.StringType,
        title="OAuth client ID",
        description="Client ID of your GHL Marketplace app (user type Location).",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="OAuth client secret",
        description="Client secret of your GHL Marketplace app.",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        secret=True,
        title="OAuth refresh token",
        description=(
            "Initial refresh token. GHL rotates it on every use; the tap keeps the newest "
            "one in the token store and prefers it over this value. Optional when the "
            "store already holds tokens (tap-ghl-contacts-auth exchange writes them)."
        ),
    ),
    th.Property(
        "token_store_path",
        th.StringType,
        title="Token store path",
        description=(
            "File where rotated OAuth tokens are kept (mode 0600). Default: "
            "<user data dir>/tap-ghl-contacts/tokens/<client_id>--<location_id>.json, "
            "e.g. ~/.local/share/tap-ghl-contacts/tokens/... on Linux."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description="Read contacts updated at or after this ISO 8601 time on the first run.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="API URL",
        description="Base URL of the GHL API v2; the token endpoint is {api_url}/oauth/token.",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        title="User agent",
        description="User-Agent header sent with every request.",
    ),
    th.Property(
        "page_size",
        th.IntegerType,
        default=100,
        title="Page size",
        description=f"Contacts per search page (pageLimit), 1 to {MAX_PAGE_SIZE}.",
    ),
    th.Property(
        "lookback_seconds",
        th.IntegerType,
        default=300,
        title="Lookback (seconds)",
        description=(
            "Incremental runs re-read contacts updated this long before the bookmark, "
            "because GHL's search index lags writes by a few seconds."
        ),
    ),
    th.Property(
        "max_requests_per_interval",
        th.IntegerType,
        default=95,
        title="Request ceiling per rate-limit interval",
        description=(
            "Most requests the tap sends per GHL rate-limit interval (10 s unless GHL's "
            "X-RateLimit-Interval-Milliseconds says otherwise). GHL allows 100; the tap also "
            "never exceeds 95% of the X-RateLimit-Max GHL reports."
        ),
    ),
    th.Property(
        "daily_quota_reserve",
        th.IntegerType,
        default=1000,
        title="Daily quota reserve",
        description=(
            "Stop cleanly (exit code 3, resumable state) when GHL's X-RateLimit-Daily-Remaining "
            "falls to this many requests, leaving them to other integrations of the location."
        ),
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        default=8,
        title="Concurrent requests",
        description="Requests in flight at once (child lists are fetched ahead in a pool).",
    ),
    th.Property(
        "request_timeout_seconds",
        th.IntegerType,
        default=60,
        title="Request timeout (seconds)",
        description=(
            "A request with no answer for this long is abandoned and retried like a dropped connection."
        ),
    ),
    th.Property(
        "tasks_source",
        th.StringType,
        default="location_search",
        allowed_values=["location_search", "per_contact"],
        title="Where tasks come from",
        description=(
            "location_search: POST /locations/{id}/tasks/search for 100 contacts per request "
            "(scope locations/tasks.readonly); per_contact: GET /contacts/{id}/tasks for each."
        ),
    ),
    th.Property(
        "appointments_source",
        th.StringType,
        default="calendar_events",
        allowed_values=["calendar_events", "per_contact"],
        title="Where appointments come from",
        description=(
            "calendar_events: GET /calendars/events per calendar and time window (scope "
            "calendars/events.readonly); per_contact: GET /contacts/{id}/appointments for each "
            "contact the run emits."
        ),
    ),
    th.Property(
        "notes_scope",
        th.StringType,
        default="changed_contacts",
        allowed_values=["changed_contacts", "all_contacts"],
        title="Whose notes each run reads",
        description=(
            "changed_contacts: notes of the contacts the run emits (new or changed since the "
            "last run; misses a note added to a contact whose dateUpdated did not move). "
            "all_contacts: notes of every contact on every run (one request per contact)."
        ),
    ),
    th.Property(
        "appointments_horizon_days",
        th.IntegerType,
        default=365,
        title="Appointment horizon (days)",
        description="calendar_events: read appointments starting up to this many days ahead.",
    ),
    th.Property(
        "appointments_resync_days",
        th.IntegerType,
        default=30,
        title="Appointment re-read window (days)",
        description=(
            "calendar_events: incremental runs re-read appointments that started up to this "
            "many days ago (the endpoint cannot filter by update time)."
        ),
    ),
    th.Property(
        "appointments_window_days",
        th.IntegerType,
        default=400,
        title="Appointment request window (days)",
        description="calendar_events: start-time span of one request; lower it if GHL refuses long spans.",
    ),
    th.Property(
        "naive_timestamp_timezone",
        th.StringType,
        default="UTC",
        title="Time zone of zone-less timestamps",
        description=(
            "IANA time zone in which timestamps GHL sends without an offset (such as "
            "appointment times '2024-05-01 10:00:00') are read. Set it to the location's "
            "time zone if its appointments are stored in local time."
        ),
    ),
).to_dict()


class AuthMode(enum.Enum):
    """How the tap authenticates."""

    STATIC_TOKEN = "access_token"  # noqa: S105  (a mode name, not a secret)
    OAUTH = "oauth"


def _present(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    return value is not None and value != ""


def auth_mode(config: Mapping[str, Any]) -> AuthMode:
    """The configured auth mode; call only on a config that passed ``problems``."""
    return AuthMode.STATIC_TOKEN if _present(config, "access_token") else AuthMode.OAUTH


def _auth_problems(config: Mapping[str, Any]) -> list[str]:
    oauth_set = [k for k in OAUTH_SETTINGS if _present(config, k)]
    if _present(config, "access_token") and oauth_set:
        both = ", ".join(oauth_set)
        return [
            (
                "Configure exactly one auth mode: access_token (Private Integration Token) or "
                f"client_id + client_secret (OAuth). Both are set: access_token and {both}."
            )
        ]
    if _present(config, "access_token"):
        return []
    if not oauth_set:
        return [
            (
                "No credentials: set access_token (a Private Integration Token), or client_id "
                "and client_secret (an OAuth app) with refresh_token or tokens in the token store."
            )
        ]
    missing = [k for k in ("client_id", "client_secret") if not _present(config, k)]
    if missing:
        return [f"OAuth needs client_id and client_secret; missing: {', '.join(missing)}."]
    return []


def _api_url_problems(url: Any) -> list[str]:  # noqa: ANN401
    parts = urlsplit(str(url))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return [f"api_url must be an http(s) URL such as {DEFAULT_API_URL}; got {url!r}."]
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return ["api_url must use https (plain http is allowed only for loopback addresses)."]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _whole_in(value: Any, low: int, high: int) -> bool:  # noqa: ANN401
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def problems(config: Mapping[str, Any]) -> list[str]:
    """Every problem with ``config``, each naming the setting involved."""
    found: list[str] = []
    if "location_id" in config and not str(config.get("location_id") or "").strip():
        found.append("location_id is empty; set it to the sub-account's location ID.")
    found.extend(_auth_problems(config))
    found.extend(_api_url_problems(config.get("api_url", DEFAULT_API_URL)))
    start = config.get("start_date")
    if start is not None:
        try:
            dt.datetime.fromisoformat(str(start))
        except ValueError:
            found.append(
                f"start_date must be an ISO 8601 date or time such as 2024-01-31T00:00:00Z; got {start!r}."
            )
    page_size = config.get("page_size", 100)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        found.append(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}; got {page_size!r}.")
    lookback = config.get("lookback_seconds", 300)
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        found.append(f"lookback_seconds must be a whole number of seconds, 0 or more; got {lookback!r}.")
    found.extend(
        f"{key} must be a whole number from {low} to {high}; got {config[key]!r}."
        for key, low, high in (
            ("max_requests_per_interval", 1, 1_000_000),
            ("daily_quota_reserve", 0, 10_000_000),
            ("max_concurrency", 1, 64),
            ("request_timeout_seconds", 1, 600),
            ("appointments_horizon_days", 0, 3650),
            ("appointments_resync_days", 0, 3650),
            ("appointments_window_days", 1, 3650),
        )
        if key in config and not _whole_in(config[key], low, high)
    )
    tz_name = config.get("naive_timestamp_timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        found.append(
            "naive_timestamp_timezone must be an IANA time zone such as UTC or "
            f"America/New_York; got {tz_name!r}."
        )
    return found
