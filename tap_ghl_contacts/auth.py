"""Token modes (static bearer token, rotating OAuth) and the token store.

GHL rotates OAuth refresh tokens: every refresh returns a new refresh token and the
old one stops working. Losing the newest one means the user has to re-authorise by
hand, so the newest tokens are written to a token store (atomically, mode 0600)
immediately after every refresh, and refreshes are serialised across processes with
a file lock next to the store. singer-sdk 0.54's ``OAuthAuthenticator`` keeps
neither the rotated token nor a lock, so this module implements
``requests.auth.AuthBase`` directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import backoff
import filelock
import platformdirs
import requests
from requests.auth import AuthBase
from typing_extensions import override

from tap_ghl_contacts.errors import AuthError, DeadGrantError, TokenStoreError, error_words

if TYPE_CHECKING:
    from collections.abc import Iterator

STORE_FORMAT_VERSION = 1
# Refresh this long before GHL says the access token expires.
REFRESH_MARGIN_SECONDS = 300
# How many spent refresh tokens (as SHA-256 digests) a store entry remembers.
SPENT_HISTORY = 50
TOKEN_REQUEST_TIMEOUT = 60
LOCK_TIMEOUT_SECONDS = 300
TOKEN_REQUEST_TRIES = 3

REAUTHORISE_HINT = (
    "Re-authorise: run 'tap-ghl-contacts-auth url --config CONFIG --redirect-uri URI' "
    "(URI: a redirect URI registered on your app) and open the printed URL, then run "
    "'tap-ghl-contacts-auth exchange --config CONFIG --redirect-uri URI --code CODE' with "
    "the code GHL appends to that redirect URI. The tap then reads the new tokens from the "
    "token store."
)


def fingerprint(secret: str) -> str:
    """Identify a secret without storing or printing it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_of(headers: Any) -> str | None:  # noqa: ANN401
    """Return the bearer token a request was sent with."""
    value = headers.get("Authorization") or ""
    return value[len("Bearer ") :] if value.startswith("Bearer ") else None


def default_token_store_path(client_id: str, location_id: str) -> Path:
    """Per-user store file, one per OAuth client and location."""
    safe = re.compile(r"[^A-Za-z0-9._-]+")
    name = f"{safe.sub('_', client_id)}--{safe.sub('_', location_id)}.json"
    return platformdirs.user_data_path("tap-ghl-contacts") / "tokens" / name


@dataclass
class TokenSet:
    """The newest tokens of one OAuth grant, as kept in the store."""

    access_token: str
    refresh_token: str
    expires_at: float
    obtained_at: float
    scope: str | None = None
    spent_refresh_tokens: list[str] = field(default_factory=list)

    def is_fresh(self, now: float | None = None) -> bool:
        """Whether the access token is usable for a while yet.

        The margin is capped at half the token's lifetime, so a short-lived token is
        still used before it is refreshed again.
        """
        current = time.time() if now is None else now
        margin = min(REFRESH_MARGIN_SECONDS, (self.expires_at - self.obtained_at) / 2)
        return self.expires_at - margin > current

    def knows(self, refresh_token: str) -> bool:
        """Whether ``refresh_token`` is this chain's current or an already spent one."""
        return refresh_token == self.refresh_token or fingerprint(refresh_token) in self.spent_refresh_tokens

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenSet:
        """Read a store entry; raises ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=float(data["expires_at"]),
            obtained_at=float(data["obtained_at"]),
            scope=data.get("scope"),
            spent_refresh_tokens=[str(x) for x in data.get("spent_refresh_tokens", [])],
        )

    @classmethod
    def from_token_response(
        cls,
        payload: dict[str, Any],
        *,
        spent: list[str],
        previous_refresh_token: str | None = None,
    ) -> TokenSet:
        """Build from a ``POST /oauth/token`` answer."""
        now = time.time()
        access_token = payload.get("access_token")
        refresh_token = payload.get("refresh_token") or previous_refresh_token
        if not isinstance(access_token, str) or not isinstance(refresh_token, str):
            msg = "GHL's token endpoint answered without an access_token or refresh_token."
            raise AuthError(msg)
        try:
            expires_in = float(payload.get("expires_in") or 86399)
        except (TypeError, ValueError):
            expires_in = 86399.0
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=now + expires_in,
            obtained_at=now,
            scope=payload.get("scope"),
            spent_refresh_tokens=spent[-SPENT_HISTORY:],
        )


class TokenStore:
    """A JSON file of token sets keyed by client id and location id.

    Writes go to a temporary file in the same folder, are fsynced and renamed over the
    store, so a crash leaves either the old or the new file, never half of one.
    """

    def __init__(self, path: Path) -> None:
        """Use the store at ``path`` (created on first write)."""
        self.path = path
        self._lock = filelock.FileLock(
            str(path) + ".lock",
            timeout=LOCK_TIMEOUT_SECONDS,
        )

    @staticmethod
    def key(client_id: str, location_id: str) -> str:
        """Entry name for one grant."""
        return f"{client_id}:{location_id}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cross-process lock that serialises refreshes."""
        self._ensure_folder()
        try:
            with self._lock:
                yield
        except filelock.Timeout as exc:
            msg = (
                f"Another process has held the token store lock {self._lock.lock_file} "
                f"for {LOCK_TIMEOUT_SECONDS} s; is another sync stuck?"
            )
            raise TokenStoreError(msg) from exc

    def load(self, client_id: str, location_id: str) -> TokenSet | None:
        """The stored tokens for one grant, if any."""
        entry = self._read().get("tokens", {}).get(self.key(client_id, location_id))
        if entry is None:
            return None
        try:
            return TokenSet.from_json(entry)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Token store {self.path} has a malformed entry for this client and location."
            raise TokenStoreError(msg) from exc

    def save(self, client_id: str, location_id: str, tokens: TokenSet) -> None:
        """Replace one grant's entry atomically; call while holding ``locked()``."""
        content = self._read()
        content["version"] = STORE_FORMAT_VERSION
        content.setdefault("tokens", {})[self.key(client_id, location_id)] = asdict(tokens)
        self._write(content)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            msg = f"Cannot read the token store {self.path}: {exc.strerror}."
            raise TokenStoreError(msg) from exc
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = (
                f"The token store {self.path} is not valid JSON. Move it aside and "
                f"re-authorise. {REAUTHORISE_HINT}"
            )
            raise TokenStoreError(msg) from exc
        if not isinstance(content, dict) or not isinstance(content.get("tokens", {}), dict):
            msg = f"The token store {self.path} does not hold a token store object."
            raise TokenStoreError(msg)
        return content

    def _ensure_folder(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"Cannot create the token store folder {self.path.parent}: {exc.strerror}."
            raise TokenStoreError(msg) from exc

    def _write(self, content: dict[str, Any]) -> None:
        self._ensure_folder()
        data = json.dumps(content, indent=2, sort_keys=True).encode()
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            msg = f"Cannot write the token store {self.path}: {exc.strerror}."
            raise TokenStoreError(msg) from exc
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file with mode 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp_name).replace(self.path)
            self._fsync_folder()
        except OSError as exc:
            with contextlib.suppress(OSError):
                Path(tmp_name).unlink()
            msg = f"Cannot write the token store {self.path}: {exc.strerror}."
            raise TokenStoreError(msg) from exc

    def _fsync_folder(self) -> None:
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class StaticTokenAuth(AuthBase):
    """A Private Integration Token (or any location access token) as a fixed bearer."""

    def __init__(self, token: str) -> None:
        """Send ``token`` on every request."""
        self._token = token

    @override
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization header."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    @override
    def __repr__(self) -> str:
        """Never show the token."""
        return "StaticTokenAuth(token=<redacted>)"


class RotatingOAuth(AuthBase):
    """OAuth access tokens from a rotating refresh token, shared across processes.

    - Uses a still-fresh access token from the store rather than refreshing.
    - Refreshes shortly before expiry, and once after a 401 (then retries that request
      once, through a response hook, the way requests' digest auth does).
    - Persists every rotation to the store before the new access token is used.
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        client_id: str,
        client_secret: str,
        location_id: str,
        token_url: str,
        store: TokenStore,
        refresh_token: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Configure the grant; nothing is requested until the first API call."""
        self.client_id = client_id
        self._client_secret = client_secret
        self.location_id = location_id
        self.token_url = token_url
        self.store = store
        self._config_refresh_token = refresh_token
        self._user_agent = user_agent
        self._tokens: TokenSet | None = None
        self._mutex = threading.RLock()
        self._session = requests.Session()
        self.refresh_count = 0
        # Refresh tokens GHL refused in this process (by digest): never sent again, so a
        # grant that dies mid-run is reported once, not re-tried by every 401 on every thread.
        self._refused: dict[str, DeadGrantError] = {}

    @override
    def __repr__(self) -> str:
        """Never show secrets."""
        return f"RotatingOAuth(client_id={self.client_id!r}, location_id={self.location_id!r})"

    @override
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add a fresh bearer token and arm the once-only 401 retry."""
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        hooks = request.hooks["response"]
        if self._retry_once_after_401 not in hooks:  # requests may apply auth twice
            hooks.append(self._retry_once_after_401)
        return request

    def access_token(self) -> str:
        """A usable access token, refreshing (once, for all threads) if needed."""
        with self._mutex:
            if self._tokens is None or not self._tokens.is_fresh():
                self._renew(rejected=None)
            assert self._tokens is not None  # noqa: S101  (_renew sets it or raises)
            return self._tokens.access_token

    def renew_after_rejection(self, rejected: str | None) -> None:
        """GHL answered 401 to ``rejected``: get a different access token."""
        with self._mutex:
            if self._tokens is not None and self._tokens.access_token != rejected:
                return  # another thread already replaced it
            self._renew(rejected=rejected)

    def _retry_once_after_401(
        self,
        response: requests.Response,
        **kwargs: Any,  # noqa: ANN401
    ) -> requests.Response:
        if response.status_code != requests.codes.unauthorized:
            return response
        self.renew_after_rejection(bearer_of(response.request.headers))
        response.close()
        retry = response.request.copy()
        retry.hooks = {"response": []}  # a second 401 is final
        retry.headers["Authorization"] = f"Bearer {self.access_token()}"
        second: requests.Response = response.connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
        return second

    def _renew(self, *, rejected: str | None) -> None:
        with self.store.locked():
            stored = self.store.load(self.client_id, self.location_id)
            if (
                stored is not None
                and stored.access_token != rejected
                and stored.is_fresh()
                and (self._config_refresh_token is None or stored.knows(self._config_refresh_token))
            ):
                self._tokens = stored  # refreshed by another process, or by a past run
                return
            self._tokens = self._refresh_with_best_token(stored)

    def _candidates(self, stored: TokenSet | None) -> list[tuple[str, list[str]]]:
        """Refresh tokens to try, newest first, each with its chain's spent history."""
        config_token = self._config_refresh_token
        if stored is None:
            return [(config_token, [])] if config_token else []
        chain = (stored.refresh_token, stored.spent_refresh_tokens)
        if config_token is None or stored.knows(config_token):
            return [chain]
        # A config token the store has never seen is probably a newly pasted grant: try it
        # first (superseding the stored chain), and fall back to the chain if GHL says no.
        superseding = [*stored.spent_refresh_tokens, fingerprint(stored.refresh_token)]
        return [(config_token, superseding), chain]

    def _history(self, spent: list[str]) -> list[str]:
        """The newest spent digests, always keeping the config's token, which every run checks.

        Without the pin, the config token's digest falls out after SPENT_HISTORY refreshes
        and every later run would send that dead token first.
        """
        config = self._config_refresh_token
        pinned = fingerprint(config) if config else None
        if pinned is None or pinned not in spent:
            return spent[-SPENT_HISTORY:]
        return [pinned, *[d for d in spent if d != pinned][-(SPENT_HISTORY - 1) :]]

    def _refresh_with_best_token(self, stored: TokenSet | None) -> TokenSet:
        every = self._candidates(stored)
        candidates = [(token, spent) for token, spent in every if fingerprint(token) not in self._refused]
        if every and not candidates:  # the grant already died in this run: say so, don't ask again
            raise DeadGrantError(str(self._refused[fingerprint(every[0][0])]))
        if not candidates:
            msg = (
                f"No OAuth refresh token for client {self.client_id} and location "
                f"{self.location_id}: set refresh_token, or store tokens first. {REAUTHORISE_HINT}"
            )
            raise DeadGrantError(msg)
        dead: DeadGrantError | None = None
        refused: list[str] = []
        for refresh_token, spent in candidates:
            try:
                payload = self._request_refresh(refresh_token)
            except DeadGrantError as exc:
                dead = exc
                refused.append(fingerprint(refresh_token))
                self._refused[refused[-1]] = exc
                continue
            self._check_location(payload)
            tokens = TokenSet.from_token_response(
                payload,
                spent=self._history([*spent, *refused, fingerprint(refresh_token)]),
                previous_refresh_token=refresh_token,
            )
            self.store.save(self.client_id, self.location_id, tokens)
            self.refresh_count += 1
            return tokens
        assert dead is not None  # noqa: S101  (every candidate failed with DeadGrantError)
        raise dead

    def _check_location(self, payload: dict[str, Any]) -> None:
        granted = payload.get("locationId")
        if granted and granted != self.location_id:
            msg = (
                f"The OAuth grant is for location {granted}, not for the configured "
                f"location_id {self.location_id}."
            )
            raise AuthError(msg)

    def _request_refresh(self, refresh_token: str) -> dict[str, Any]:
        form = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "user_type": "Location",
        }
        response = post_token_request(self._session, self.token_url, form, self._user_agent)
        return parse_token_response(response, client_id=self.client_id, location_id=self.location_id)


def _is_transient(exc: Exception) -> bool:
    return not (
        isinstance(exc, requests.HTTPError)
        and exc.response is not None
        and exc.response.status_code < requests.codes.internal_server_error
    )


@backoff.on_exception(
    backoff.expo,
    (requests.ConnectionError, requests.Timeout, requests.HTTPError),
    max_tries=TOKEN_REQUEST_TRIES,
    giveup=lambda exc: not _is_transient(exc),
    raise_on_giveup=True,
    logger=None,
)
def _post_with_retries(
    session: requests.Session,
    url: str,
    form: dict[str, str],
    headers: dict[str, str],
) -> requests.Response:
    response = session.post(url, data=form, headers=headers, timeout=TOKEN_REQUEST_TIMEOUT)
    if response.status_code >= requests.codes.internal_server_error:
        response.raise_for_status()
    return response


def post_token_request(
    session: requests.Session,
    url: str,
    form: dict[str, str],
    user_agent: str | None = None,
) -> requests.Response:
    """POST a form to GHL's token endpoint, retrying transient failures."""
    headers = {"Accept": "application/json"}
    if user_agent:
        headers["User-Agent"] = user_agent
    try:
        return _post_with_retries(session, url, form, headers)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        msg = (
            f"GHL's token endpoint failed with HTTP {status} after {TOKEN_REQUEST_TRIES} tries; retry later."
        )
        raise AuthError(msg) from None
    except requests.RequestException as exc:
        msg = f"Cannot reach GHL's token endpoint {url}: {type(exc).__name__}."
        raise AuthError(msg) from None


def parse_token_response(
    response: requests.Response,
    *,
    client_id: str,
    location_id: str,
) -> dict[str, Any]:
    """Return the token payload, or raise the error that tells the user what to do."""
    if response.ok:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            msg = "GHL's token endpoint answered 200 without a JSON object."
            raise AuthError(msg)
        return payload
    words = error_words(response)
    lowered = words.lower()
    if "invalid_client" in lowered:
        msg = (
            f"GHL rejected the OAuth client (HTTP {response.status_code}: {words}). "
            "Check client_id and client_secret."
        )
        raise AuthError(msg)
    if (
        "invalid_grant" in lowered
        or "refresh token" in lowered
        or response.status_code == requests.codes.unauthorized
    ):
        msg = (
            f"GHL rejected the refresh token (HTTP {response.status_code}: {words or 'no reason given'}). "
            f"The OAuth grant for client {client_id} and location {location_id} is dead "
            f"and cannot be refreshed. {REAUTHORISE_HINT}"
        )
        raise DeadGrantError(msg)
    reason = words or "no reason given"
    msg = f"GHL's token endpoint refused the request (HTTP {response.status_code}: {reason})."
    raise AuthError(msg)
