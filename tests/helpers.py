"""Ways to put a FakeGHL on the wire and to run the tap against it."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests
import requests_mock

from tap_ghl_contacts.tap import TapGHLContacts

if TYPE_CHECKING:
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI


def mount_on_mocker(mocker: requests_mock.Mocker, sandbox: SandboxAPI, base_url: str) -> None:
    """Serve ``sandbox`` at ``base_url`` through requests-mock (no socket at all)."""

    def reply(request: Any, context: Any) -> str:
        parts = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        answer = sandbox.handle(
            request.method, parts.path, dict(request.headers), parse_qs(parts.query), body
        )
        if answer.reset:
            msg = "connection dropped by the sandbox"
            raise requests.ConnectionError(msg)
        context.status_code = answer.status
        context.headers.update({"Content-Type": answer.content_type, **answer.headers})
        return answer.text()

    mocker.register_uri(requests_mock.ANY, re.compile(re.escape(base_url) + r"(/.*)?$"), text=reply)


@dataclass
class SyncOutput:
    """What one in-process tap run wrote to stdout."""

    messages: list[dict[str, Any]]

    def records(self, stream: str) -> list[dict[str, Any]]:
        """RECORD payloads of one stream, in order."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE, which the next run is given."""
        return self.states[-1]


def run_sync(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> SyncOutput:
    """Run a full sync in-process and parse its Singer messages."""
    output, failure = run_sync_catching(config, state, catalog)
    if failure is not None:
        raise failure
    return output


def run_sync_catching(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> tuple[SyncOutput, Exception | None]:
    """Run a sync that may fail; return what it wrote and the error it ended with."""
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # the writer needs .buffer
    failure: Exception | None = None
    with redirect_stdout(buffer):
        try:
            TapGHLContacts(config=config, state=state, catalog=catalog, validate_config=True).sync_all()
        except Exception as exc:  # noqa: BLE001  (handed to the test to inspect)
            failure = exc
    buffer.flush()
    raw = buffer.buffer.getvalue().decode()
    messages = [json.loads(line) for line in raw.splitlines() if line.strip()]
    return SyncOutput(messages), failure


# Tests that are not about pacing run at full speed; the sandbox then sends no limits.
UNPACED = {"max_requests_per_interval": 10_000}


def pit_config(sandbox: SandboxAPI, api_url: str, **extra: Any) -> dict[str, Any]:
    """A Private Integration Token config for the sandbox's location."""
    return {
        "location_id": sandbox.location_id,
        "access_token": sandbox.credentials.pit,
        "api_url": api_url,
        **UNPACED,
        **extra,
    }


def oauth_config(sandbox: SandboxAPI, api_url: str, store: Path, **extra: Any) -> dict[str, Any]:
    """An OAuth config whose token store lives in the test's tmp folder."""
    return {
        "location_id": sandbox.location_id,
        "client_id": sandbox.credentials.client_id,
        "client_secret": sandbox.credentials.client_secret,
        "api_url": api_url,
        "token_store_path": str(store),
        **UNPACED,
        **extra,
    }


def selecting(*streams: str) -> dict[str, Any]:
    """A catalog (as a run_sync keyword) that selects only ``streams``."""
    catalog = TapGHLContacts(config={}, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    """Write a config file the CLI can read."""
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def tap_cli(*args: str) -> list[str]:
    """The command line of the tap, run with this interpreter."""
    return [sys.executable, "-m", "tap_ghl_contacts", *args]


def run_tap_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the tap's CLI to completion and capture both streams."""
    return subprocess.run(tap_cli(*args), capture_output=True, text=True, timeout=120, check=False)


def run_tap_cli_concurrently(count: int, *args: str) -> list[tuple[int, str, str]]:
    """Start ``count`` tap processes at once; return (exit code, stdout, stderr) of each."""
    processes = [
        subprocess.Popen(tap_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs, strict=True)]
