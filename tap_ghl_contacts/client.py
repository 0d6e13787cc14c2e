"""The base stream: URL, headers, auth, errors, retries and record clean-up."""

from __future__ import annotations

import decimal
import weakref
import zoneinfo
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, cast
from urllib.parse import urlsplit

from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_ghl_contacts.auth import StaticTokenAuth
from tap_ghl_contacts.conform import FieldTypes
from tap_ghl_contacts.errors import APIResponseError, AuthError, error_words
from tap_ghl_contacts.settings import DEFAULT_API_URL
from tap_ghl_contacts.timestamps import UTC, TimestampField, normalize_record, timestamp_fields

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Generator, Iterable

    import requests
    from requests.auth import AuthBase
    from singer_sdk.helpers.types import Context

    from tap_ghl_contacts.tap import TapGHLContacts

CONTACTS_API_VERSION = "2021-07-28"
REQUEST_TIMEOUT_SECONDS = 60
MAX_RETRY_WAIT_SECONDS = 120.0
EXTRA_FIELDS = "_extra"

# Parsed bodies, so the paginator and the record parser share one json.loads per page.
_parsed_bodies: weakref.WeakKeyDictionary[requests.Response, Any] = weakref.WeakKeyDictionary()


def response_body(response: requests.Response) -> Any:  # noqa: ANN401
    """The JSON body of a response, parsed once.

    Floats become ``Decimal`` so money and scores keep their exact digits.
    """
    if response in _parsed_bodies:
        return _parsed_bodies[response]
    try:
        body = response.json(parse_float=decimal.Decimal)
    except ValueError as exc:
        msg = (
            f"GHL answered {response.request.method} {_path_of(response)} with a body that "
            "is not valid JSON (truncated or an HTML error page?)."
        )
        raise RetriableAPIError(msg, response) from exc
    _parsed_bodies[response] = body
    return body


def _path_of(response: requests.Response) -> str:
    return urlsplit(response.url).path or "?"


class GHLStream(RESTStream[Any]):
    """A GHL API v2 endpoint read by this tap."""

    api_version: ClassVar[str] = CONTACTS_API_VERSION
    # Records are the API's JSON, with timestamps already normalised to strings and
    # undeclared top-level fields moved to _extra: singer-sdk's per-field conformance
    # (half the CPU time per record) has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Key of the record list in the response body.
    records_key: ClassVar[str]
    #: A contact can be deleted between the search and this request: a JSON 404 then
    #: means "no records" (an HTML 404 would still be an error: a wrong URL).
    contact_may_vanish: ClassVar[bool] = False

    @property
    def ghl_tap(self) -> TapGHLContacts:
        """The tap, typed."""
        return cast("TapGHLContacts", self._tap)

    @override
    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url") or DEFAULT_API_URL).rstrip("/")

    @override
    @property
    def http_headers(self) -> dict[str, str]:
        return {"Version": self.api_version, "Accept": "application/json"}

    @override
    @property
    def authenticator(self) -> AuthBase:
        return self.ghl_tap.authenticator

    @override
    @property
    def requests_session(self) -> requests.Session:
        return self.ghl_tap.http_session

    @override
    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout_seconds", REQUEST_TIMEOUT_SECONDS))

    # Errors

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == HTTPStatus.NOT_FOUND and self._contact_vanished(response):
            return
        if status == HTTPStatus.UNAUTHORIZED:
            raise AuthError(self._unauthorized_message(response))
        if status == HTTPStatus.FORBIDDEN:
            msg = (
                f"GHL refused {_path_of(response)} (HTTP 403: {error_words(response)}). The "
                f"token has no access to location {self.config['location_id']} or lacks a "
                "scope; the tap needs contacts.readonly (see the README)."
            )
            raise AuthError(msg)
        super().validate_response(response)
        if response.ok:
            # Parse inside the retried request: a truncated body or an HTML page is retried.
            response_body(response)

    def _unauthorized_message(self, response: requests.Response) -> str:
        words = error_words(response)
        if isinstance(self.authenticator, StaticTokenAuth):
            return (
                f"GHL rejected access_token (HTTP 401: {words}). The Private Integration "
                "Token is invalid, was rotated or lacks access; create or copy a current one "
                "under Settings > Private Integrations of the sub-account."
            )
        return (
            f"GHL rejected a freshly refreshed OAuth access token (HTTP 401: {words}). "
            "Check that the app is still installed on the location and has the scopes "
            "listed in the README."
        )

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # The SDK default appends the whole body, which can hold contact data.
        kind = "Client" if response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR else "Server"
        return (
            f"{response.status_code} {kind} Error for {response.request.method} "
            f"{_path_of(response)}: {error_words(response)}"
        )

    # Retries

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        attempt = 0
        exception = yield 0.0  # primed by backoff before the first failure
        while True:
            attempt += 1
            exception = yield self._retry_wait(exception, attempt)

    @staticmethod
    def _retry_wait(exception: Exception, attempt: int) -> float:
        """GHL's Retry-After or rate-limit interval on 429, else exponential."""
        response = getattr(exception, "response", None)
        if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            for header, scale in (("Retry-After", 1.0), ("X-RateLimit-Interval-Milliseconds", 0.001)):
                try:
                    return min(float(response.headers[header]) * scale, MAX_RETRY_WAIT_SECONDS)
                except (KeyError, ValueError):
                    continue
        return float(min(2**attempt, MAX_RETRY_WAIT_SECONDS))

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # waits come from GHL's headers or a fixed ladder

    # Records

    def fetch_all(self, context: Context | None) -> list[dict[str, Any]]:
        """Every record of one unpaged list, as a job the prefetch pool can run."""
        return list(self.request_records(context))

    def _contact_vanished(self, response: requests.Response) -> bool:
        return self.contact_may_vanish and response.headers.get("Content-Type", "").startswith(
            "application/json"
        )

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        if response.status_code == HTTPStatus.NOT_FOUND:
            self.logger.warning(
                "Stream '%s': contact gone before it was read (%s).", self.name, error_words(response)
            )
            return
        body = response_body(response)
        records = body.get(self.records_key) if isinstance(body, dict) else None
        if not isinstance(records, list):
            msg = (
                f"GHL answered {_path_of(response)} without a '{self.records_key}' list; "
                "the response shape changed or the request was wrong."
            )
            raise APIResponseError(msg)
        for record in records:
            if not isinstance(record, dict):
                msg = f"GHL answered {_path_of(response)} with a non-object item in '{self.records_key}'."
                raise APIResponseError(msg)
            yield record

    @cached_property
    def _timestamp_fields(self) -> tuple[TimestampField, ...]:
        return timestamp_fields(self.schema)

    @cached_property
    def _field_types(self) -> FieldTypes:
        timestamps = frozenset(field.name for field in self._timestamp_fields if field.is_timestamp)
        return FieldTypes(self.schema, skip=timestamps | {EXTRA_FIELDS})

    @cached_property
    def _declared_fields(self) -> frozenset[str]:
        return frozenset(self.schema.get("properties", {}))

    @cached_property
    def _naive_tz(self) -> dt.tzinfo:
        name = str(self.config.get("naive_timestamp_timezone") or "UTC")
        return UTC if name == "UTC" else zoneinfo.ZoneInfo(name)

    @override
    def post_process(
        self,
        row: dict[str, Any],
        context: Context | None = None,
    ) -> dict[str, Any] | None:
        unknown = row.keys() - self._declared_fields
        extra: dict[str, Any] = {}
        if unknown:
            # Keep fields the schema does not declare yet instead of letting them drop.
            extra.update((key, row.pop(key)) for key in unknown)
            self._note_unknown_fields(unknown)
        for name in self._field_types.mismatches(row):
            if name in self._field_types.required:
                self._refuse(row, f"has a {name} of type {type(row[name]).__name__}")
            extra[name] = row[name]
            row[name] = None
        missing = [key for key in self.primary_keys or () if row.get(key) is None]
        if missing:
            self._refuse(row, f"has no {', '.join(missing)}")
        bad = normalize_record(row, self._timestamp_fields, self._naive_tz)
        if bad and self.replication_key in dict(bad):
            self._refuse(
                row, f"has a {self.replication_key} that is not a timestamp; the bookmark cannot move past it"
            )
        extra.update(bad)
        if extra:
            row[EXTRA_FIELDS] = extra
            if mistyped := sorted(extra.keys() - unknown):
                self.logger.warning(
                    "Stream '%s' record %r: %s did not match the declared type; emitted as null, "
                    "the original value kept in %s.",
                    self.name,
                    row.get("id"),
                    ", ".join(mistyped),
                    EXTRA_FIELDS,
                )
        return row

    def _refuse(self, row: dict[str, Any], problem: str) -> NoReturn:
        """Stop the run rather than emit a record a target cannot key or order."""
        msg = (
            f"GHL sent a '{self.name}' record (id {str(row.get('id'))[:40]!r}) that {problem}; "
            "stopping before it is emitted. The last STATE is resumable."
        )
        raise APIResponseError(msg)

    @cached_property
    def _reported_unknown(self) -> set[str]:
        return set()

    def _note_unknown_fields(self, names: Iterable[str]) -> None:
        new = sorted(set(names) - self._reported_unknown)
        if new:
            self._reported_unknown.update(new)
            self.logger.info(
                "Stream '%s' kept undeclared fields in %s: %s",
                self.name,
                EXTRA_FIELDS,
                ", ".join(new),
            )
