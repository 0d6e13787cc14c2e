"""Token rotation under stress: many runs, racing processes, kills, lost and revoked grants.

GHL refresh tokens are single-use, so the one failure that cannot be repaired is losing
the newest one. Each scenario runs the real CLI in subprocesses against a sandbox on a
loopback socket whose access tokens live a second or two, so every run has to refresh,
and checks after every step that the token store is still valid JSON with mode 0600.
Where the grant really is gone, the tap must say how to re-authorise in one line.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_ghl_contacts.auth import REAUTHORISE_HINT, TokenSet
from tests.helpers import oauth_config, selecting, tap_cli, write_config
from tests.sandboxes import sandbox_with
from tests.scenarios import Transcript, served

if TYPE_CHECKING:
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI
    from tests.scenarios import Scenario

# Seconds an access token lives; the tap treats it as stale after half of that, so a
# contacts-only run (one request after its refresh) refreshes exactly once.
SHORT_TTL = 1
CONSECUTIVE_RUNS = 15
RACING_PROCESSES = 4
# Seconds between the store being replaced and SIGKILL, one killed run each.
KILL_DELAYS = (0.0, 0.004, 0.03, 0.12)
DEAD_GRANT_WORDS = "is dead and cannot be refreshed"
POLL_SECONDS = 0.001
PROCESS_TIMEOUT = 120


@dataclass
class Setup:
    """One sandbox grant and the files a user would have: config, catalog, token store."""

    sandbox: SandboxAPI
    config: Path
    catalog: Path
    store: Path

    def args(self, *, all_streams: bool = False) -> list[str]:
        """CLI arguments: contacts only (one request after the refresh) unless asked."""
        return ["--config", str(self.config)] + ([] if all_streams else ["--catalog", str(self.catalog)])


def prepare(folder: Path, sandbox: SandboxAPI, url: str) -> Setup:
    """Write a config holding a freshly issued refresh token, and a contacts-only catalog."""
    store = folder / "tokens" / "store.json"  # the tap creates the folder
    config = write_config(
        folder, oauth_config(sandbox, url, store, refresh_token=sandbox.issue_refresh_token())
    )
    catalog = folder / "catalog.json"
    catalog.write_text(json.dumps(selecting("contacts")), encoding="utf-8")
    return Setup(sandbox, config, catalog, store)


def store_entry(setup: Setup) -> dict[str, Any]:
    """Check the store is valid JSON, mode 0600, with any leftover temp file 0600 too; return our entry."""
    assert stat.S_IMODE(setup.store.parent.stat().st_mode) == 0o700  # the tap made the folder
    assert stat.S_IMODE(setup.store.stat().st_mode) == 0o600
    for leftover in setup.store.parent.glob("*.tmp"):  # only a kill mid-write could leave one
        assert stat.S_IMODE(leftover.stat().st_mode) == 0o600
    content = json.loads(setup.store.read_text(encoding="utf-8"))
    assert isinstance(content, dict)
    sandbox = setup.sandbox
    entry: dict[str, Any] = content["tokens"][f"{sandbox.credentials.client_id}:{sandbox.location_id}"]
    TokenSet.from_json(entry)  # the tap can read it back
    return entry


def assert_store_holds_the_live_token(setup: Setup) -> None:
    """The only refresh token GHL still honours is the one in the store."""
    assert setup.sandbox.refresh_tokens == {store_entry(setup)["refresh_token"]}


def wait_until_stale(setup: Setup) -> None:
    """Sleep until the tap's own rule says the stored access token needs a refresh."""
    tokens = TokenSet.from_json(store_entry(setup))
    while tokens.is_fresh():
        time.sleep(0.02)


def token_statuses(sandbox: SandboxAPI) -> list[int]:
    """Status of every token request the sandbox answered (0: dropped)."""
    return [r["status"] for r in sandbox.requests if r["path"] == "/oauth/token"]


def store_signature(setup: Setup) -> tuple[int, int] | None:
    """Changes whenever the store is replaced (atomic rename: a new inode)."""
    try:
        info = setup.store.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def start(args: list[str]) -> subprocess.Popen[str]:
    """Start the tap's CLI without waiting for it."""
    return subprocess.Popen(tap_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(transcript: Transcript, process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a started CLI and keep both of its streams; a hung one is killed, not left behind."""
    try:
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        transcript.keep(out, err)
        raise
    transcript.keep(out, err)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def record_count(done: subprocess.CompletedProcess[str]) -> int:
    """RECORD messages a run wrote to stdout."""
    return sum(json.loads(line)["type"] == "RECORD" for line in done.stdout.splitlines() if line.strip())


def assert_ok(done: subprocess.CompletedProcess[str]) -> None:
    """A run that authenticated and finished."""
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr


def assert_says_reauthorise(done: subprocess.CompletedProcess[str]) -> None:
    """Exit 1, no traceback, and exactly one line that says the grant is dead and how to re-authorise."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if REAUTHORISE_HINT in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert DEAD_GRANT_WORDS in lines[0]
    assert "ERROR" in lines[0]


def many_consecutive_runs(folder: Path) -> Transcript:
    """Fifteen runs in a row, each refreshing once, each leaving the live token in the store."""
    transcript = Transcript("rotation: many consecutive runs")
    sandbox = sandbox_with(30, access_token_ttl=SHORT_TTL)
    with served(sandbox) as url:
        setup = prepare(folder, sandbox, url)
        for run in range(1, CONSECUTIVE_RUNS + 1):
            done = transcript.run_cli(*setup.args())
            assert_ok(done)
            assert record_count(done) == 30
            assert token_statuses(sandbox) == [200] * run  # exactly one refresh per run, none refused
            assert_store_holds_the_live_token(setup)
            assert len(store_entry(setup)["spent_refresh_tokens"]) == run
            wait_until_stale(setup)
        assert not list(setup.store.parent.glob("*.tmp"))
    transcript.guard(sandbox)
    return transcript


def processes_started_at_once(folder: Path) -> Transcript:
    """Racing processes share one store: refreshes queue on the lock and never spend a token twice.

    Every stream is synced, so runs outlive their half-second access tokens and also
    refresh mid-run, while the other processes are reading or refreshing.
    """
    transcript = Transcript("rotation: processes started at once")
    sandbox = sandbox_with(30, access_token_ttl=SHORT_TTL)
    with served(sandbox) as url:
        setup = prepare(folder, sandbox, url)
        for _ in range(2):  # first from the config's token, then from a stale store
            processes = [start(setup.args(all_streams=True)) for _ in range(RACING_PROCESSES)]
            for done in [finish(transcript, process) for process in processes]:
                assert_ok(done)
            assert set(token_statuses(sandbox)) == {200}  # no invalid_grant: never a spent token
            assert_store_holds_the_live_token(setup)
            wait_until_stale(setup)
        refreshes = len(token_statuses(sandbox))
        assert_ok(transcript.run_cli(*setup.args()))
        assert token_statuses(sandbox)[refreshes:] == [200]
        assert_store_holds_the_live_token(setup)
    transcript.guard(sandbox)
    return transcript


def killed_right_after_a_refresh(folder: Path) -> Transcript:
    """SIGKILL once the rotated token is stored, at a few moments; the next run carries on."""
    transcript = Transcript("rotation: killed right after a refresh")
    # A little latency keeps a full sync going for well over the longest delay below.
    sandbox = sandbox_with(30, access_token_ttl=SHORT_TTL, latency=0.005)
    with served(sandbox) as url:
        setup = prepare(folder, sandbox, url)
        assert_ok(transcript.run_cli(*setup.args()))
        for delay in KILL_DELAYS:
            wait_until_stale(setup)
            before, grants = store_signature(setup), len(token_statuses(sandbox))
            process = start(setup.args(all_streams=True))
            while store_signature(setup) == before and process.poll() is None:
                time.sleep(POLL_SECONDS)
            time.sleep(delay)
            process.kill()
            killed = finish(transcript, process)
            assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
            assert token_statuses(sandbox)[grants:]  # it refreshed before dying...
            assert set(token_statuses(sandbox)) == {200}  # ...and never with a spent token
            assert_store_holds_the_live_token(setup)

            wait_until_stale(setup)  # so the next run must spend the token the killed run stored
            grants = len(token_statuses(sandbox))
            assert_ok(transcript.run_cli(*setup.args()))
            assert token_statuses(sandbox)[grants:] == [200]
            assert_store_holds_the_live_token(setup)
    transcript.guard(sandbox)
    return transcript


def rotated_but_the_answer_was_lost(folder: Path) -> Transcript:
    """GHL spent the refresh token but the tap never got the new one: say how to re-authorise.

    Twice: the connection drops after GHL rotated (the tap's retry of the spent token is
    refused), and the tap is SIGKILLed between GHL rotating and the answer arriving.
    """
    transcript = Transcript("rotation: rotated but the answer was lost")
    for variant in ("dropped", "killed"):
        sandbox = sandbox_with(30, access_token_ttl=SHORT_TTL)
        with served(sandbox) as url:
            (folder / variant).mkdir()
            setup = prepare(folder / variant, sandbox, url)
            assert_ok(transcript.run_cli(*setup.args()))
            before = setup.store.read_bytes()
            wait_until_stale(setup)
            if variant == "dropped":
                sandbox.drop_token_answers = 1
                assert_says_reauthorise(transcript.run_cli(*setup.args()))
                assert token_statuses(sandbox)[1:] == [0, 400]  # rotated and lost, then the spent token
            else:
                process = start(setup.args())
                sandbox.on_tokens_changed = process.kill  # GHL has rotated; the answer is not sent yet
                killed = finish(transcript, process)
                sandbox.on_tokens_changed = None
                assert killed.returncode == -signal.SIGKILL
            assert setup.store.read_bytes() == before  # untouched: still the old, now spent, chain
            store_entry(setup)
            assert not sandbox.refresh_tokens & {store_entry(setup)["refresh_token"]}

            grants = len(token_statuses(sandbox))
            done = transcript.run_cli(*setup.args())  # the next run
            assert_says_reauthorise(done)
            assert record_count(done) == 0
            assert token_statuses(sandbox)[grants:] == [400]  # one try, not the spent config token too
            assert setup.store.read_bytes() == before
            store_entry(setup)
        transcript.guard(sandbox)
    return transcript


def revoked_mid_stream(folder: Path) -> Transcript:
    """The user uninstalls the app during a sync: the run stops with the re-authorise line."""
    transcript = Transcript("rotation: grant revoked mid-stream")
    sandbox = sandbox_with(30, access_token_ttl=SHORT_TTL)
    with served(sandbox) as url:
        setup = prepare(folder, sandbox, url)
        assert_ok(transcript.run_cli(*setup.args()))
        wait_until_stale(setup)

        def revoke_grant() -> None:
            sandbox.after_search = None
            sandbox.refresh_tokens.clear()
            sandbox.revoke_access_tokens()

        sandbox.after_search = revoke_grant  # after the first page of contacts went out
        grants = len(token_statuses(sandbox))
        done = transcript.run_cli(*setup.args(all_streams=True))
        assert_says_reauthorise(done)
        refused = token_statuses(sandbox)[grants:]
        assert refused[0] == 200  # the run's own refresh, before the grant was revoked
        assert refused[1:] == [400]  # then one invalid_grant: the dead grant is not asked again
        assert any(r["status"] == 401 for r in sandbox.api_calls())  # it was cut off mid-stream
        assert record_count(done) > 0
        store_entry(setup)

        grants = len(token_statuses(sandbox))
        again = transcript.run_cli(*setup.args())
        assert_says_reauthorise(again)
        assert token_statuses(sandbox)[grants:] == [400]
        store_entry(setup)
    transcript.guard(sandbox)
    return transcript


SCENARIOS: tuple[Scenario, ...] = (
    many_consecutive_runs,
    processes_started_at_once,
    killed_right_after_a_refresh,
    rotated_but_the_answer_was_lost,
    revoked_mid_stream,
)
