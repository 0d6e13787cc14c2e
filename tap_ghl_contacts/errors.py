"""Errors the tap reports to the user as one clear message, without a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class TapGHLError(Exception):
    """A problem the user can act on; the CLI prints the message and exits non-zero."""

    exit_code = 1


class AuthError(TapGHLError):
    """GHL refused our credentials."""


class DeadGrantError(AuthError):
    """The OAuth grant can no longer be refreshed: the user must re-authorise."""


class TokenStoreError(TapGHLError):
    """The token store cannot be read or written."""


class APIResponseError(TapGHLError):
    """GHL answered with an error or a body we cannot use."""


class StopRequestedError(TapGHLError):
    """SIGTERM or Ctrl-C: the run stops at the next record boundary, resumably."""

    def __init__(self, signal_name: str, signal_number: int) -> None:
        """Exit like a process the signal ended (128 + the signal's number)."""
        super().__init__(f"Stopped by {signal_name}; the last STATE is resumable: run again to continue.")
        self.exit_code = 128 + signal_number


def error_words(response: requests.Response) -> str:
    """GHL's own words on an error and its trace id, short; never the rest of the body.

    API errors say ``message`` (a list on 422), the token endpoint says ``error`` and
    ``error_description``; other keys can hold contact data and are not echoed.
    """
    try:
        body = response.json()
    except ValueError:
        return "no JSON error body"
    if not isinstance(body, dict):
        return "unexpected error body"
    parts = []
    for key in ("error", "error_description", "message"):
        value = body.get(key)
        if isinstance(value, list):
            value = "; ".join(str(item) for item in value)
        if value:
            parts.append(str(value))
    words = " ".join(parts)[:200]
    trace = body.get("traceId")
    return f"{words} (traceId {trace})" if trace else words
