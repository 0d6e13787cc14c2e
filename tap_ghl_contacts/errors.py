"""Errors the tap reports to the user as one clear message, without a traceback."""

from __future__ import annotations


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
