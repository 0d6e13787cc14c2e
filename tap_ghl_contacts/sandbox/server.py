"""The sandbox on a real socket (werkzeug), in-process or as ``ghl-sandbox``.

Besides GHL's own routes it answers a few ``/_sandbox/*`` routes that GHL does not
have: the truth a complete sync must contain, data changes between runs, fault
injection and counters. It only ever binds to a loopback address.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import click
from typing_extensions import override
from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tap_ghl_contacts.sandbox.account import Account
from tap_ghl_contacts.sandbox.api import RateLimits, SandboxAPI

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ADMIN_PREFIX = "/_sandbox/"
logger = logging.getLogger("ghl-sandbox")


class SandboxApp:
    """WSGI front of a ``SandboxAPI``."""

    def __init__(self, api: SandboxAPI, *, mutation_seed: int = 1) -> None:
        """Serve ``api``."""
        self.api = api
        self._mutation_rng = random.Random(mutation_seed)  # noqa: S311  (test data)
        self._in_flight = 0
        self._gauge = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        if request.path.startswith(ADMIN_PREFIX):
            response = self._admin(request)
            return response(environ, start_response)
        with self._gauge:
            self._in_flight += 1
            self.api.max_in_flight = max(self.api.max_in_flight, self._in_flight)
        try:
            return self._serve(request, environ, start_response)
        finally:
            with self._gauge:
                self._in_flight -= 1

    def _serve(
        self, request: Request, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        reply = self.api.handle(
            request.method,
            request.path,
            dict(request.headers),
            {k: request.args.getlist(k) for k in request.args},
            request.get_data(),
        )
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            _drop_connection(environ)
            start_response("500 Dropped", [])
            return [b""]  # the write fails on the closed socket; werkzeug ignores that
        response = Response(
            reply.text(), status=reply.status, headers=reply.headers, content_type=reply.content_type
        )
        return response(environ, start_response)

    def _admin(self, request: Request) -> Response:
        api, route = self.api, request.path.removeprefix(ADMIN_PREFIX)
        body = request.get_json(silent=True) or {}
        if route == "truth":
            payload: Any = api.account.truth()
        elif route == "stats":
            payload = stats(api)
        elif route == "mutate" and request.method == "POST":
            payload = api.mutate(
                self._mutation_rng, dt.datetime.now(dt.UTC), scale=float(body.get("scale", 0.01))
            )
        elif route == "faults" and request.method == "POST":
            try:
                payload = asdict(api.inject(**body))
            except (TypeError, ValueError) as exc:
                return Response(json.dumps({"error": str(exc)}), status=400, content_type="application/json")
        elif route == "faults" and request.method == "DELETE":
            api.faults.clear()
            payload = {"faults": []}
        elif route == "revoke" and request.method == "POST":
            api.revoke_access_tokens()
            payload = {"revoked": True}
        elif route == "grant" and request.method == "POST":
            payload = {"refresh_token": api.issue_refresh_token()}
        else:
            return Response(
                json.dumps({"error": f"no admin route {route}"}), status=404, content_type="application/json"
            )
        return Response(json.dumps(payload), content_type="application/json")


def stats(api: SandboxAPI) -> dict[str, Any]:
    """Counters a benchmark or test reads after a run."""
    by_status: dict[str, int] = {}
    for entry in api.requests:
        by_status[str(entry.get("status"))] = by_status.get(str(entry.get("status")), 0) + 1
    return {
        "requests": len(api.requests),
        "api_requests": len(api.api_calls()),
        "by_status": by_status,
        "rate_limited": api.limiter.rejected,
        "token_grants": api.token_grants,
        "max_in_flight": api.max_in_flight,
    }


def _drop_connection(environ: WSGIEnvironment) -> None:
    """Close the connection without answering (the client sees it dropped mid-request)."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request; errors from deliberately reset sockets are dropped."""

    @override
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Stay quiet: benchmarks send hundreds of thousands of requests."""

    @override
    def log_error(self, *args: Any) -> None:
        """Drop socket errors caused by injected resets."""


def require_loopback(host: str) -> None:
    """The sandbox never listens beyond this machine."""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        msg = f"the sandbox binds only to loopback addresses, not {host}"
        raise ValueError(msg)


class SandboxServer:
    """A ``SandboxAPI`` on ``http://127.0.0.1:<port>`` in a background thread."""

    def __init__(self, api: SandboxAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind now (port 0 picks a free one); serve after ``start``."""
        require_loopback(host)
        self.api = api
        self.app = SandboxApp(api)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ghl-sandbox", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, to use as the tap's ``api_url``."""
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> Self:
        """Serve in the background."""
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()


# Persistence between runs (for the demo's second, incremental run)


class SandboxState:
    """Remembers the seed, the rounds of changes and the live tokens across restarts."""

    def __init__(self, path: Path) -> None:
        """Keep state in ``path`` (JSON)."""
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved state, if any."""
        try:
            loaded: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return loaded

    def save(self, content: dict[str, Any]) -> None:
        """Write atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".sandbox-state.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
        Path(tmp).replace(self.path)


def build_persistent_api(  # noqa: PLR0913
    state: SandboxState,
    *,
    contacts: int,
    seed: int,
    mutate: bool,
    rate_limits: RateLimits,
    latency: float,
) -> tuple[SandboxAPI, dict[str, Any], str]:
    """Rebuild the account from its seed and saved rounds; maybe add a round of changes."""
    saved = state.load() or {
        "seed": seed,
        "contacts": contacts,
        "rounds": [],
        "refresh_tokens": [],
        "access_tokens": {},
    }
    account = Account.seeded(saved["contacts"], seed=saved["seed"])
    for number, when in enumerate(saved["rounds"]):
        account.mutate(random.Random(saved["seed"] * 1000 + number), dt.datetime.fromisoformat(when))  # noqa: S311
    changes: dict[str, Any] = {}
    if mutate and state.load() is not None:
        when = dt.datetime.now(dt.UTC)
        changes = account.mutate(random.Random(saved["seed"] * 1000 + len(saved["rounds"])), when)  # noqa: S311
        saved["rounds"].append(when.isoformat())
    api = SandboxAPI(
        account, rate_limits=rate_limits, latency=latency, seed=saved["seed"] + len(saved["rounds"])
    )
    api.refresh_tokens.update(saved["refresh_tokens"])
    api.access_tokens.update(saved["access_tokens"])

    def persist() -> None:
        saved["refresh_tokens"] = sorted(api.refresh_tokens)
        saved["access_tokens"] = dict(api.access_tokens)
        state.save(saved)

    api.on_tokens_changed = persist
    if "first_refresh_token" not in saved:
        saved["first_refresh_token"] = api.issue_refresh_token()  # persists through the hook
    persist()
    return api, changes, str(saved["first_refresh_token"])


def parse_fault(spec: str) -> dict[str, Any]:
    """``kind[:path-regex[:after[:times]]]``, e.g. ``502:/contacts/search:3:2``."""
    kind, *rest = spec.split(":")
    options: dict[str, Any] = {"kind": kind}
    if rest and rest[0]:
        options["path"] = rest[0]
    if len(rest) > 1 and rest[1]:
        options["after"] = int(rest[1])
    if len(rest) > 2 and rest[2]:  # noqa: PLR2004
        options["times"] = None if rest[2] == "all" else int(rest[2])
    return options


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option("--contacts", default=2000, show_default=True, help="Contacts to seed.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated data.")
@click.option("--latency-ms", default=0.0, show_default=True, help="Added to every API answer.")
@click.option(
    "--rate-limit/--no-rate-limit", default=True, show_default=True, help="Answer 429 beyond the limits."
)
@click.option("--burst", default=100, show_default=True, help="Requests per interval.")
@click.option("--interval-ms", default=10_000, show_default=True, help="Burst interval.")
@click.option("--daily", default=200_000, show_default=True, help="Requests per day.")
@click.option(
    "--retry-after/--no-retry-after", default=False, show_default=True, help="Send Retry-After on 429."
)
@click.option(
    "--fault", "faults", multiple=True, help="Inject a fault: kind[:path[:after[:times]]]. Repeatable."
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Persist data rounds and tokens here.",
)
@click.option(
    "--mutate",
    is_flag=True,
    help="With saved state: apply one round of changes (an incremental run's input).",
)
@click.option(
    "--credentials-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the tap's OAuth settings here.",
)
def main(  # noqa: PLR0913
    host: str,
    port: int,
    contacts: int,
    seed: int,
    latency_ms: float,
    *,
    rate_limit: bool,
    burst: int,
    interval_ms: int,
    daily: int,
    retry_after: bool,
    faults: tuple[str, ...],
    state_dir: Path | None,
    mutate: bool,
    credentials_file: Path | None,
) -> None:
    """Serve a local GHL API v2 sandbox with seeded data until interrupted."""
    limits = RateLimits(
        enabled=rate_limit, burst=burst, interval_ms=interval_ms, daily=daily, send_retry_after=retry_after
    )
    first_refresh_token: str | None = None
    if state_dir is not None:
        api, changes, first_refresh_token = build_persistent_api(
            SandboxState(state_dir / "sandbox-state.json"),
            contacts=contacts,
            seed=seed,
            mutate=mutate,
            rate_limits=limits,
            latency=latency_ms / 1000,
        )
    else:
        api, changes = (
            SandboxAPI(Account.seeded(contacts, seed=seed), rate_limits=limits, latency=latency_ms / 1000),
            {},
        )
    for spec in faults:
        try:
            api.inject(**parse_fault(spec))
        except (TypeError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        server = SandboxServer(api, host=host, port=port)
    except (OSError, ValueError) as exc:
        msg = f"cannot listen on {host}:{port}: {exc}"
        raise click.ClickException(msg) from None
    if credentials_file is not None:
        # The first refresh token, as a user would have pasted it once: after the first
        # run it is spent, and the tap must carry on from its token store.
        refresh_token = first_refresh_token or api.issue_refresh_token()
        credentials_file.write_text(
            json.dumps(
                {
                    "api_url": server.url,
                    "location_id": api.location_id,
                    "client_id": api.credentials.client_id,
                    "client_secret": api.credentials.client_secret,
                    "refresh_token": refresh_token,
                    "access_token": api.credentials.pit,
                    "changes": {k: len(v) for k, v in changes.items()},
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    signal.signal(signal.SIGTERM, _interrupt)
    click.echo(
        f"ghl-sandbox: {len(api.account.contacts)} contacts for {api.location_id} on {server.url}", err=True
    )
    sys.stderr.flush()
    server.serve_forever()


def _interrupt(_signum: int, _frame: object) -> None:
    """Let SIGTERM end ``serve_forever`` the way Ctrl-C does."""
    raise KeyboardInterrupt
