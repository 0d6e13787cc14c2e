"""Wire faults during a sync: the run ends with a clean run's records, or fails loudly and resumes.

Every scenario runs the real CLI against the sandbox on a real socket, with OAuth (so
tokens rotate while faults fly), and compares the records to a clean run of the same
seeded location, record by record.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tap_ghl_contacts.sandbox import Account, RateLimits, SandboxAPI
from tests.helpers import oauth_config, pit_config, write_config
from tests.scenarios import Scenario, Transcript, served

CONTACTS = 400
#: Low enough that a "slow" fault (4 s) is a timeout, high enough for a loaded CI machine.
TIMEOUT_SECONDS = 2
#: Limits the tap never reaches, so a 429 fault's wait (one interval) is short.
FAST_RATE_LIMITS = RateLimits(burst=1000, interval_ms=300)


def seeded_sandbox(rate_limits: RateLimits | None = None) -> SandboxAPI:
    """The same messy location every time."""
    return SandboxAPI(Account.seeded(CONTACTS), rate_limits=rate_limits or RateLimits(enabled=False))


@dataclass
class CliRun:
    """One CLI run: exit code, Singer messages from stdout, and stderr."""

    returncode: int
    messages: list[dict[str, Any]]
    stderr: str

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The last STATE the run emitted: what Meltano would hand the next run."""
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else None

    @property
    def errors(self) -> list[str]:
        """The ERROR lines of the log."""
        return [line for line in self.stderr.splitlines() if "| ERROR" in line]

    def records(self) -> Counter[tuple[str, str]]:
        """Every RECORD as (stream, canonical JSON), counted."""
        rows = (m for m in self.messages if m["type"] == "RECORD")
        return Counter((m["stream"], json.dumps(m["record"], sort_keys=True)) for m in rows)


def sync_cli(
    transcript: Transcript, folder: Path, config: dict[str, Any], state: dict[str, Any] | None = None
) -> CliRun:
    """Run the tap's CLI once; stdout must be nothing but Singer messages."""
    arguments = ["--config", str(write_config(folder, config))]
    if state is not None:
        state_file = folder / "state.json"
        state_file.write_text(json.dumps(state), encoding="utf-8")
        transcript.keep_file(state_file)
        arguments += ["--state", str(state_file)]
    done = transcript.run_cli(*arguments)
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return CliRun(done.returncode, messages, done.stderr)


def faulted_config(sandbox: SandboxAPI, url: str, folder: Path) -> dict[str, Any]:
    """OAuth with a fresh grant, a token store in ``folder`` and a short request timeout."""
    return oauth_config(
        sandbox,
        url,
        folder / "tokens.json",
        refresh_token=sandbox.issue_refresh_token(),
        max_concurrency=4,
        request_timeout_seconds=TIMEOUT_SECONDS,
    )


@functools.cache
def clean_records() -> Counter[tuple[str, str]]:
    """The records of a sync with no faults (computed once per test session)."""
    sandbox = seeded_sandbox()
    with tempfile.TemporaryDirectory() as scratch, served(sandbox) as url:
        run = sync_cli(Transcript("clean"), Path(scratch), pit_config(sandbox, url))
    assert run.returncode == 0, run.errors
    return run.records()


def survives(name: str, *faults: dict[str, Any], rate_limits: RateLimits | None = None) -> Scenario:
    """A scenario: with ``faults`` injected, the run succeeds with exactly the clean records."""

    def scenario(folder: Path) -> Transcript:
        transcript = Transcript(name)
        sandbox = seeded_sandbox(rate_limits)
        injected = [sandbox.inject(**fault) for fault in faults]
        with served(sandbox) as url:
            run = sync_cli(transcript, folder, faulted_config(sandbox, url, folder))
        transcript.guard(sandbox)
        assert run.returncode == 0, run.errors
        assert [f"{f.kind} on {f.path!r}" for f in injected if not f.fired] == []  # each fault hit
        assert run.records() == clean_records()
        return transcript

    scenario.__name__ = name
    return scenario


def fails_loudly_then_resumes(folder: Path) -> Transcript:
    """A fault the tap must not retry stops the run; its last STATE loses nothing."""
    transcript = Transcript("fails_loudly_then_resumes")
    sandbox = seeded_sandbox()
    fault = sandbox.inject("fatal", path="/notes$", after=150)
    with served(sandbox) as url:
        config = faulted_config(sandbox, url, folder)
        first = sync_cli(transcript, folder, config)
        assert fault.fired == 1
        second = sync_cli(transcript, folder, config, state=first.last_state)
    transcript.guard(sandbox)
    assert first.returncode == 1
    assert "Traceback" not in first.stderr
    assert any("422" in line and "simulated failure" in line for line in first.errors), first.errors
    assert second.returncode == 0, second.errors
    delivered = first.records() + second.records()
    assert set(delivered) == set(clean_records())  # nothing lost, nothing malformed
    return transcript


SURVIVED: list[Scenario] = [
    survives(
        "server_errors_with_json_bodies",
        {"kind": "500", "path": "^/contacts/search$", "after": 1},
        {"kind": "503", "path": "/notes$", "after": 20, "times": 2},
        {"kind": "502", "path": "/tasks/search$"},
    ),
    survives(
        "html_error_pages",
        {"kind": "html", "path": "^/contacts/search$", "after": 2},
        {"kind": "html", "path": "^/calendars/events$"},
    ),
    survives(
        "connection_resets",
        {"kind": "reset", "path": "^/contacts/search$", "after": 1},
        {"kind": "reset", "path": "/notes$", "after": 30, "times": 2},
    ),
    survives(
        "timeouts",
        {"kind": "slow", "path": "/notes$", "after": 40, "seconds": 2 * TIMEOUT_SECONDS},
        {"kind": "slow", "path": "/tasks/search$", "seconds": 2 * TIMEOUT_SECONDS},
    ),
    survives(
        "truncated_json_bodies",
        {"kind": "truncate", "path": "^/contacts/search$", "after": 1},
        {"kind": "truncate", "path": "/notes$", "after": 10},
        {"kind": "truncate", "path": "^/calendars/events$", "after": 1},
    ),
    survives(
        "bursts_of_429",
        {"kind": "429", "after": 25, "times": 6},
        {"kind": "429", "path": "/notes$", "after": 100, "times": 4},
        rate_limits=FAST_RATE_LIMITS,
    ),
    survives("access_token_revoked_mid_run", {"kind": "revoke", "after": 50}),
    survives(
        "a_mix_at_random",
        *(
            {"kind": kind, "probability": 0.03, "times": 2}
            for kind in ("500", "html", "reset", "truncate", "429", "revoke")
        ),
        rate_limits=FAST_RATE_LIMITS,
    ),
]

SCENARIOS: list[Scenario] = [*SURVIVED, fails_loudly_then_resumes]
