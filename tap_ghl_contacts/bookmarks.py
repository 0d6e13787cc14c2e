"""Checks on the state a run is given, so a damaged one fails with a clear message.

State normally comes from the tap's own STATE messages (Meltano stores the last one), but
it can be edited by hand or truncated on the way. A bookmark the tap cannot read would
otherwise surface as a traceback from deep inside singer-sdk.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tap_ghl_contacts.errors import TapGHLError


class StateError(TapGHLError):
    """The state given to the tap cannot be used."""


def state_problems(state: Any) -> list[str]:  # noqa: ANN401  (checking untrusted JSON)
    """What is wrong with ``state``, one line per problem; empty when it is usable."""
    if not isinstance(state, dict):
        return [f"state must be a JSON object, not {type(state).__name__}"]
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        return ["state 'bookmarks' must be an object of streams"]
    problems = []
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            problems.append(f"state bookmark of stream '{stream}' must be an object")
            continue
        value = bookmark.get("replication_key_value")
        if value is not None and not _is_iso_timestamp(value):
            problems.append(
                f"state bookmark of stream '{stream}' has replication_key_value {str(value)[:40]!r}, "
                "which is not a timestamp"
            )
    return problems


def check_state(state: Any) -> None:  # noqa: ANN401  (checking untrusted JSON)
    """Raise one StateError naming every problem of ``state``."""
    problems = state_problems(state)
    if problems:
        msg = (
            "The state file cannot be used: "
            + "; ".join(problems)
            + ". Fix it, or drop it to start a full sync."
        )
        raise StateError(msg)


def _is_iso_timestamp(value: Any) -> bool:  # noqa: ANN401
    """Whether singer-sdk can read ``value`` as a bookmark (it uses ISO 8601 only)."""
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
