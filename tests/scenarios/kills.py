"""kill -9 at seeded random points of a long sync; resume each time from the last STATE printed.

A killed tap writes nothing on its way out: what a target got before the SIGKILL, and the
last STATE among it, is all there is. Each attempt runs the real CLI against a sandbox on
a loopback socket, is killed at a planned point, and the next starts from the last STATE
that reached stdout (the pipe is drained after the kill: the tap printed it, so a target
would have it). A last attempt runs to the end. Then every stream must hold exactly the
sandbox's ids, a killed run must have left no file behind (its output is its only state),
and every record printed twice must be one the resume was allowed to repeat:

    A run resumed from the last STATE of a killed run repeats at most the contact printed
    just before that STATE, the contact whose tasks or notes were being printed when it
    came, and the contacts printed after it, each with its tasks and notes: 101 contacts
    at most, as a STATE follows every 100th contact of a run. A run killed before its
    appointments scan finished (no STATE yet) also repeats the appointments it printed.

Contacts 1000-1299 have no tasks or notes, so kills there cut between contacts rather
than inside a contact's children. A SIGTERM (terminated_and_resumed) is gentler: the tap
writes a last STATE on its way out, so the resume repeats almost nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_ghl_contacts.sandbox.account import epoch_ms
from tap_ghl_contacts.streams import ContactsStream
from tests.helpers import pit_config, tap_cli, write_config
from tests.sandboxes import BASE_TIME, sandbox_with
from tests.scenarios import Transcript, served

if TYPE_CHECKING:
    from pathlib import Path

    from tap_ghl_contacts.sandbox import SandboxAPI

SEED = 20_240_901
CONTACTS = 2000
# Contacts without tasks or notes, so the SDK's every-100-records STATE is the only one there.
QUIET = range(1000, 1300)
# Seconds the sandbox adds to each answer: requests overlap in the pool when the kill lands.
LATENCY = 0.002
# A killed tap is at most a pipe (64 KiB) and two 8 KiB buffers ahead of the reader, about
# 200 appointment lines: appointment kill points stay this many appointments before the end,
# so they land before the scan's STATE.
PIPE_MARGIN = 500
# Contacts kill points stay this far from the end, so no killed run gets to finish.
END_MARGIN = 200
ATTEMPT_TIMEOUT = 120
# Incremental runs re-scan appointments that started this recently; the data has none.
RESYNC_DAYS = 30
# The widest repeat the tap allows per resume (see the module docstring).
MOST_CONTACTS_REPEATED = ContactsStream.STATE_MSG_FREQUENCY + 1
CHILD_STREAMS = ("tasks", "notes")
STREAMS = ("contacts", "tasks", "notes", "appointments")

# Where a kill is planned to land.
BEFORE_FIRST_STATE = "before the first STATE"
IN_SCAN = "appointments scan"
FIRST_CONTACT = "first contact"
IN_CONTACTS = "contacts"
IN_QUIET = "contacts without tasks or notes"
RESUMED_START = "first lines of a resumed run"
PHASES = frozenset({BEFORE_FIRST_STATE, IN_SCAN, FIRST_CONTACT, IN_CONTACTS, IN_QUIET, RESUMED_START})

Message = dict[str, Any]
Key = tuple[str, str]  # (stream, record id)


@dataclass(frozen=True)
class KillPoint:
    """Where to SIGKILL one attempt: ``extra_lines`` lines after its trigger line.

    The trigger is the first line (``stream`` None) or the first RECORD of ``stream`` whose
    id sorts at or after ``record_id``; ids sort in the order the tap prints them.
    """

    phase: str
    stream: str | None = None
    record_id: str = ""
    extra_lines: int = 0

    def triggered_by(self, message: Message) -> bool:
        """Whether ``message`` is the line the countdown starts at."""
        if self.stream is None:
            return True
        return (
            message.get("type") == "RECORD"
            and message.get("stream") == self.stream
            and str(message["record"]["id"]) >= self.record_id
        )


@dataclass
class Attempt:
    """What one tap process printed before it was killed (or finished)."""

    number: int
    kill: KillPoint | None
    messages: list[Message]
    stdout: str
    exit_code: int
    killed_at_line: int | None = None

    def records(self) -> list[tuple[Key, Message]]:
        """(stream, id) and record of every RECORD, in order."""
        return [
            ((m["stream"], str(m["record"]["id"])), m["record"])
            for m in self.messages
            if m["type"] == "RECORD"
        ]


@dataclass
class ResumePoint:
    """A STATE the next attempt may start from, and what was printed after it.

    A STATE that leaves the contacts bookmark (value and lookback memory) as it was does
    not confirm the contacts printed before it, so it keeps the point it belongs to.
    """

    state: dict[str, Any] | None = None
    #: The contact printed just before the STATE, and one whose tasks or notes were.
    around: set[str] = field(default_factory=set)
    touched_after: set[str] = field(default_factory=set)


@dataclass
class KillCost:
    """What the attempt after a kill printed again, against what its resume point allowed."""

    attempt: int
    kill_phase: str  # where the kill of the attempt before was planned
    repeated: Counter[str]
    allowed_contacts: int
    allowed: Counter[str]
    surplus: list[Key]


@dataclass
class KillRun:
    """The scenario's transcript plus the numbers the test and the README quote."""

    transcript: Transcript
    attempts: list[Attempt]
    costs: list[KillCost]


def contacts_bookmark(state: dict[str, Any] | None) -> str:
    """The contacts part of a state (bookmark and lookback memory), comparable as text."""
    bookmarks = (state or {}).get("bookmarks", {})
    contacts = bookmarks.get("contacts", {})
    return json.dumps(
        [contacts.get("replication_key_value"), contacts.get("synced_in_lookback")], sort_keys=True
    )


def appointments_scanned(state: dict[str, Any] | None) -> bool:
    """Whether a state was printed after the appointments scan finished (it then has a bookmark)."""
    bookmarks = (state or {}).get("bookmarks", {})
    return bool(bookmarks.get("appointments", {}).get("replication_key_value"))


def build_sandbox() -> SandboxAPI:
    """Contacts with tasks, notes and appointments; a stretch of them without tasks or notes."""
    sandbox = sandbox_with(CONTACTS, tie_every=3, latency=LATENCY)
    for index in QUIET:
        contact_id = f"c{index:06d}"
        sandbox.account.tasks[contact_id] = []
        sandbox.account.notes[contact_id] = []
    return sandbox


def kill_plan(rng: random.Random, sandbox: SandboxAPI) -> list[KillPoint]:
    """Seeded kill points: before the first STATE, in the appointments scan, all through contacts."""
    truth = sandbox.account.truth()
    appointments = truth["appointments"][: len(truth["appointments"]) - PIPE_MARGIN]
    contacts = truth["contacts"]

    def early(phase: str) -> KillPoint:
        return KillPoint(phase, extra_lines=rng.randint(0, 2))

    def in_scan() -> KillPoint:
        return KillPoint(IN_SCAN, "appointments", rng.choice(appointments), rng.randint(0, 5))

    def among(phase: str, ids: list[str], count: int) -> list[KillPoint]:
        return [
            KillPoint(phase, "contacts", contact_id, rng.randint(0, 5))
            for contact_id in sorted(rng.sample(ids, count))
        ]

    before = among(IN_CONTACTS, contacts[1 : QUIET.start], 1)
    quiet = among(IN_QUIET, contacts[QUIET.start : QUIET.stop], 2)
    after = among(IN_CONTACTS, contacts[QUIET.stop : -END_MARGIN], 3)
    return [
        early(BEFORE_FIRST_STATE),
        in_scan(),
        early(BEFORE_FIRST_STATE),
        in_scan(),
        in_scan(),
        KillPoint(FIRST_CONTACT, "contacts", contacts[0]),
        *before,
        early(RESUMED_START),
        *quiet,
        after[0],
        early(RESUMED_START),
        *after[1:],
    ]


def run_attempt(number: int, command: list[str], kill: KillPoint | None, folder: Path) -> Attempt:
    """Run the CLI, SIGKILL it at ``kill``, and keep every complete line it printed."""
    stderr_path = folder / f"attempt-{number:02d}.stderr.log"
    messages: list[Message] = []
    chunks: list[bytes] = []
    killed_at: int | None = None
    countdown: int | None = None
    with (
        stderr_path.open("wb") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr) as process,
    ):
        watchdog = threading.Timer(ATTEMPT_TIMEOUT, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:  # after the kill: what the pipe still holds
                chunks.append(line)
                if not line.endswith(b"\n"):
                    break  # cut by the kill mid-line: no target could read it
                message: Message = json.loads(line)
                messages.append(message)
                if kill is None or killed_at is not None:
                    continue
                if countdown is None and kill.triggered_by(message):
                    countdown = kill.extra_lines
                if countdown is not None:
                    if countdown == 0:
                        process.send_signal(signal.SIGKILL)
                        killed_at = len(messages)
                    countdown -= 1
            exit_code = process.wait(timeout=ATTEMPT_TIMEOUT)
        finally:
            watchdog.cancel()
    stdout = b"".join(chunks).decode("utf-8", errors="replace")
    return Attempt(number, kill, messages, stdout, exit_code, killed_at)


def children_by_contact(sandbox: SandboxAPI) -> dict[str, list[Key]]:
    """(stream, id) of each contact's tasks and notes."""
    account = sandbox.account
    found: dict[str, list[Key]] = {contact_id: [] for contact_id in account.contacts}
    for stream in CHILD_STREAMS:
        for contact_id, rows in account.children(stream).items():
            found[contact_id].extend((stream, str(row["id"])) for row in rows)
    return found


def audit(
    attempt: Attempt,
    kill_phase: str,
    point: ResumePoint,
    received: Counter[Key],
    children: dict[str, list[Key]],
) -> KillCost:
    """Compare what ``attempt`` printed again with what resuming from ``point`` may repeat."""
    contacts = point.touched_after | point.around
    allowed = {("contacts", contact_id) for contact_id in contacts}
    allowed |= {child for contact_id in contacts for child in children[contact_id]}
    if not appointments_scanned(point.state):
        allowed |= {key for key in received if key[0] == "appointments"}
    keys = [key for key, _ in attempt.records()]
    repeated = [key for key in keys if key in received]
    within_attempt = [key for key, times in Counter(keys).items() if times > 1]
    assert within_attempt == [], f"attempt {attempt.number} printed records twice: {within_attempt[:5]}"
    return KillCost(
        attempt=attempt.number,
        kill_phase=kill_phase,
        repeated=Counter(stream for stream, _ in repeated),
        allowed_contacts=len(contacts),
        allowed=Counter(stream for stream, _ in allowed),
        surplus=[key for key in repeated if key not in allowed],
    )


def advance(point: ResumePoint, attempt: Attempt) -> ResumePoint:
    """Walk ``attempt``'s lines on from ``point``; return the point the next attempt starts from.

    Its state is the last STATE printed; its contacts are those since the last STATE that
    moved the contacts bookmark.
    """
    last_contact: str | None = None
    children_of: str | None = None  # tasks or notes printed, their contact not yet
    for message in attempt.messages:
        if message["type"] == "RECORD":
            record = message["record"]
            if message["stream"] == "contacts":
                last_contact, children_of = str(record["id"]), None
                point.touched_after.add(last_contact)
            elif message["stream"] in CHILD_STREAMS:
                children_of = str(record["contactId"])
                point.touched_after.add(children_of)
        elif message["type"] == "STATE":
            state = message["value"]
            if contacts_bookmark(state) != contacts_bookmark(point.state):
                point = ResumePoint(state, {c for c in (last_contact, children_of) if c})
            else:
                point.state = state  # same contacts bookmark; the appointments part may have moved
    return point


def check_appointments_only_repeat_when_killed(sandbox: SandboxAPI) -> None:
    """Every appointment starts before the re-scan window, so only a kill can repeat one."""
    resync_from = dt.datetime.now(dt.UTC) - dt.timedelta(days=RESYNC_DAYS)
    starts = [epoch_ms(row["startTime"]) for rows in sandbox.account.appointments.values() for row in rows]
    assert max(starts) < resync_from.timestamp() * 1000


def run_kills(folder: Path) -> KillRun:
    """Kill a long sync at every planned point, resume each time, finish; check the records."""
    transcript = Transcript("kills")
    sandbox = build_sandbox()
    check_appointments_only_repeat_when_killed(sandbox)
    children = children_by_contact(sandbox)
    plan: list[KillPoint | None] = [*kill_plan(random.Random(SEED), sandbox), None]
    attempts: list[Attempt] = []
    costs: list[KillCost] = []
    received: Counter[Key] = Counter()
    point = ResumePoint()
    with served(sandbox) as url:
        config = write_config(
            folder,
            pit_config(sandbox, url, start_date=BASE_TIME.isoformat(), appointments_resync_days=RESYNC_DAYS),
        )
        for number, kill in enumerate(plan, start=1):
            arguments = ["--config", str(config)]
            if point.state is not None:
                state_file = folder / f"state-{number:02d}.json"
                state_file.write_text(json.dumps(point.state), encoding="utf-8")
                arguments += ["--state", str(state_file)]
            attempt = run_attempt(number, tap_cli(*arguments), kill, folder)
            attempts.append(attempt)
            transcript.keep(attempt.stdout)
            transcript.keep_file(folder / f"attempt-{number:02d}.stderr.log")
            if kill is None:
                assert attempt.exit_code == 0, f"the final run failed:\n{attempt.stdout[-2000:]}"
            else:
                assert attempt.killed_at_line is not None, f"attempt {number} not killed at {kill}"
                assert attempt.exit_code == -signal.SIGKILL
            if number > 1:
                kill_phase = attempts[-2].kill.phase if attempts[-2].kill else ""
                costs.append(audit(attempt, kill_phase, point, received, children))
            received.update(key for key, _ in attempt.records())
            point = advance(point, attempt)
    for state_file in sorted(folder.glob("state-*.json")):
        transcript.keep_file(state_file)
    transcript.guard(sandbox)

    check_phases(attempts)
    truth = sandbox.account.truth()
    for stream in STREAMS:
        ids = {record_id for (kind, record_id) in received if kind == stream}
        missing, extra = sorted(set(truth[stream]) - ids), sorted(ids - set(truth[stream]))
        assert (missing, extra) == ([], []), f"{stream}: missing {missing[:5]}, extra {extra[:5]}"
    for cost in costs:
        assert cost.surplus == [], (
            f"attempt {cost.attempt} repeated records no STATE allowed: {cost.surplus[:5]}"
        )
        assert cost.allowed_contacts <= MOST_CONTACTS_REPEATED, cost
    left_behind = {path.name for path in folder.iterdir()} - {"config.json"}
    assert all(name.startswith(("state-", "attempt-")) for name in left_behind), left_behind
    return KillRun(transcript, attempts, costs)


def check_phases(attempts: list[Attempt]) -> None:
    """The kills landed where they were planned: no STATE yet, in the scan, in contacts."""
    for attempt in attempts:
        printed = Counter(m.get("stream") for m in attempt.messages if m["type"] == "RECORD")
        states = [m for m in attempt.messages if m["type"] == "STATE"]
        phase = attempt.kill.phase if attempt.kill else "final run"
        if phase in {BEFORE_FIRST_STATE, IN_SCAN}:
            assert states == [], f"attempt {attempt.number} printed a STATE before its kill"
        if phase == IN_SCAN:
            assert printed["appointments"] > 0
            assert printed["contacts"] == 0
        if phase in {FIRST_CONTACT, IN_CONTACTS, IN_QUIET}:
            assert printed["contacts"] > 0


def kill_and_resume(folder: Path) -> Transcript:
    """The scenario: many kills, many resumes, nothing lost, repeats within the bound."""
    return run_kills(folder).transcript


TERMINATE_AFTER_CONTACTS = 250


def terminated_and_resumed(folder: Path) -> Transcript:
    """SIGTERM mid-sync: exit 143, a last STATE at the last contact written, a resume with ~no repeats."""
    transcript = Transcript("terminated_and_resumed")
    sandbox = sandbox_with(600, latency=LATENCY)
    with served(sandbox) as url:
        config = write_config(folder, pit_config(sandbox, url, max_concurrency=2))
        log = folder / "stderr.log"
        with (
            log.open("w", encoding="utf-8") as stderr,  # a file: an unread pipe would block the tap
            subprocess.Popen(
                tap_cli("--config", str(config)), stdout=subprocess.PIPE, stderr=stderr, text=True
            ) as process,
        ):
            assert process.stdout is not None
            lines, contacts, signalled = [], 0, False
            # Read to the end through the same file object: communicate() would read the
            # pipe's descriptor and miss what this reader has buffered already.
            for line in process.stdout:
                lines.append(line)
                contacts += line.startswith('{"type":"RECORD","stream":"contacts"')
                if contacts >= TERMINATE_AFTER_CONTACTS and not signalled:
                    process.send_signal(signal.SIGTERM)  # once: a second signal means "stop now"
                    signalled = True
            process.wait(timeout=ATTEMPT_TIMEOUT)
        errors = log.read_text(encoding="utf-8")
        transcript.keep("".join(lines), errors)
        first = [json.loads(line) for line in lines if line.strip()]
        state_file = folder / "state.json"
        state_file.write_text(json.dumps([m for m in first if m["type"] == "STATE"][-1]["value"]))
        transcript.keep_file(state_file)
        second = transcript.run_cli("--config", str(config), "--state", str(state_file))
    transcript.guard(sandbox)
    assert process.returncode == 128 + signal.SIGTERM, errors[-2000:]
    assert "Stopped by SIGTERM" in errors
    assert "Traceback" not in errors
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = [json.loads(line) for line in second.stdout.splitlines() if line.strip()]

    def ids(messages: list[dict[str, Any]], stream: str) -> list[str]:
        return [m["record"]["id"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]

    for stream in STREAMS:
        assert sorted({*ids(first, stream), *ids(resumed, stream)}) == sandbox.account.truth()[stream], stream
    assert len(ids(first, "contacts")) >= TERMINATE_AFTER_CONTACTS
    # The STATE written on the way out stops at the last contact written: at most that
    # one (written, not yet remembered as synced) comes again.
    assert len(set(ids(first, "contacts")) & set(ids(resumed, "contacts"))) <= 1
    return transcript
