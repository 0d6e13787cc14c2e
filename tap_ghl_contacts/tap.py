"""The tap: settings, auth mode and the stream registry."""

from __future__ import annotations

import signal
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import requests
from singer_sdk import Tap
from singer_sdk.exceptions import (
    ConfigValidationError,
    FatalAPIError,
    InvalidStreamSortException,
    RetriableAPIError,
)
from typing_extensions import override

from tap_ghl_contacts import settings
from tap_ghl_contacts.auth import (
    RotatingOAuth,
    StaticTokenAuth,
    TokenStore,
    default_token_store_path,
)
from tap_ghl_contacts.bookmarks import check_state
from tap_ghl_contacts.errors import StopRequestedError, TapGHLError
from tap_ghl_contacts.messages import GHLMessageWriter, GHLStateWriter
from tap_ghl_contacts.pacing import PacedAdapter, RequestPacer
from tap_ghl_contacts.prefetch import ChildPrefetcher
from tap_ghl_contacts.streams import (
    AllContactsNotesStream,
    AppointmentsStream,
    CalendarAppointmentsStream,
    ContactsStream,
    NotesStream,
    TasksSearchStream,
    TasksStream,
)

if TYPE_CHECKING:
    from types import FrameType

    from requests.auth import AuthBase
    from singer_sdk.streams import Stream

# Failures that end a run with one clear line instead of a traceback.
_USER_FACING_ERRORS = (
    TapGHLError,
    FatalAPIError,
    RetriableAPIError,
    InvalidStreamSortException,
    requests.ConnectionError,
    requests.Timeout,
)


def describe_failure(exc: BaseException) -> str:
    """One line for the user; transport errors never echo URLs with query strings."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return f"Cannot reach the GHL API ({type(exc).__name__}) after retrying; try again later."
    if isinstance(exc, RetriableAPIError):
        return f"GHL kept failing after retries: {exc}"
    return str(exc)


class TapGHLContacts(Tap):
    """Singer tap for GoHighLevel (GHL) contacts and their tasks, notes and appointments."""

    name = "tap-ghl-contacts"
    config_jsonschema = settings.CONFIG_SCHEMA
    message_writer_class = GHLMessageWriter
    #: The tap the CLI is running, so a failed run can still emit its last STATE.
    running: ClassVar[TapGHLContacts | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Build the tap and remember it as the one this process runs."""
        self.stop_requested: StopRequestedError | None = None
        super().__init__(*args, **kwargs)
        if isinstance(self.message_writer, GHLMessageWriter):
            self._state_writer = GHLStateWriter(self.message_writer)
        type(self).running = self

    def write_resumable_state(self) -> None:
        """Emit the state as it is now: every bookmark stops at a record already written.

        ``sync_all`` is final in singer-sdk and writes no STATE when a stream fails, so
        without this a run that fails at contact 199 would resume from contact 100.
        """
        self.state_writer.write_state(self.state)

    @override
    def discover_streams(self) -> list[Stream]:
        tasks = TasksStream if self.config.get("tasks_source") == "per_contact" else TasksSearchStream
        appointments = (
            AppointmentsStream
            if self.config.get("appointments_source") == "per_contact"
            else CalendarAppointmentsStream
        )
        notes = AllContactsNotesStream if self.config.get("notes_scope") == "all_contacts" else NotesStream
        return [ContactsStream(self), tasks(self), notes(self), appointments(self)]

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        check_state(state)
        super().load_state(state)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK checks types; exactly-one-auth-mode and friends are checked here.
        errors = super()._validate_config(raise_errors=False)
        errors += settings.problems(self.config)
        if errors and raise_errors:
            msg = "Config validation failed"
            raise ConfigValidationError(msg, errors=errors)
        return errors

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM or Ctrl-C: stop at the next record boundary (a second signal stops now).

        The SDK writes STATE from inside the handler and exits 0; a handler can run in
        the middle of writing a record, so the stop is only noted here and the run ends
        through the normal failure path: a resumable STATE, exit 128 + the signal.
        """
        if self.stop_requested is not None:
            sys.exit(128 + signum)
        name = signal.Signals(signum).name
        self.logger.warning("%s received: stopping after the record being written.", name)
        self.stop_requested = StopRequestedError(name, signum)

    def raise_if_stopping(self) -> None:
        """Called between records: end the run here if a signal asked for it."""
        if self.stop_requested is not None:
            raise self.stop_requested

    @cached_property
    def authenticator(self) -> AuthBase:
        """One authenticator per tap, shared by every stream."""
        config = self.config
        if settings.auth_mode(config) is settings.AuthMode.STATIC_TOKEN:
            return StaticTokenAuth(config["access_token"])
        return RotatingOAuth(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            location_id=config["location_id"],
            refresh_token=config.get("refresh_token") or None,
            token_url=f"{str(config.get('api_url') or settings.DEFAULT_API_URL).rstrip('/')}/oauth/token",
            store=TokenStore(self.token_store_path),
            user_agent=config.get("user_agent"),
        )

    @cached_property
    def pacer(self) -> RequestPacer:
        """The one rate-limit budget of this location, shared by every stream."""
        return RequestPacer(
            ceiling=int(self.config.get("max_requests_per_interval", 95)),
            daily_reserve=int(self.config.get("daily_quota_reserve", 1000)),
        )

    @cached_property
    def http_session(self) -> requests.Session:
        """One connection pool for every stream, paced."""
        session = requests.Session()
        adapter = PacedAdapter(self.pacer, pool_size=int(self.config.get("max_concurrency", 8)) + 2)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @cached_property
    def prefetcher(self) -> ChildPrefetcher:
        """The pool that fetches child lists ahead of the writer."""
        return ChildPrefetcher(int(self.config.get("max_concurrency", 8)))

    @property
    def token_store_path(self) -> Path:
        """Where rotated OAuth tokens live."""
        configured = self.config.get("token_store_path")
        if configured:
            return Path(configured).expanduser()
        return default_token_store_path(self.config["client_id"], self.config["location_id"])

    @override
    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        try:
            super().invoke(*args, **kwargs)
        except _USER_FACING_ERRORS as exc:
            if cls.running is not None:
                cls.running.write_resumable_state()
            cls.logger.error("%s", describe_failure(exc))  # noqa: TRY400  (no traceback by design)
            sys.exit(exc.exit_code if isinstance(exc, TapGHLError) else 1)


if __name__ == "__main__":
    TapGHLContacts.cli()
