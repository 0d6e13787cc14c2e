"""Bad config and command-line input: one clear line naming the problem, non-zero exit, no traceback."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.scenarios import Transcript

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

FAKE_PIT = "pit-fake-0000-bad-input"
FAKE_SECRET = "client-secret-fake-bad-input"
FAKE_REFRESH = "refresh-fake-bad-input"
PIT = {"location_id": "loc-1", "access_token": FAKE_PIT, "api_url": "http://127.0.0.1:9"}
OAUTH = {
    "location_id": "loc-1",
    "client_id": "cid",
    "client_secret": FAKE_SECRET,
    "api_url": "http://127.0.0.1:9",
}


@dataclass(frozen=True)
class Case:
    """One bad invocation: files to write, the arguments, and what the message must name."""

    name: str
    arguments: tuple[str, ...]
    named: str
    files: tuple[tuple[str, str], ...] = ()


def config_case(name: str, config: dict[str, Any], named: str) -> Case:
    """A config file that parses but cannot be used."""
    return Case(name, ("--config", "{config.json}"), named, (("config.json", json.dumps(config)),))


CASES = [
    config_case("no location", {"access_token": FAKE_PIT}, "location_id"),
    config_case("no credentials", {"location_id": "loc-1"}, "No credentials"),
    config_case(
        "both auth modes", {**PIT, "client_id": "cid", "client_secret": FAKE_SECRET}, "exactly one auth mode"
    ),
    config_case(
        "refresh token without client", {"location_id": "loc-1", "refresh_token": FAKE_REFRESH}, "client_id"
    ),
    config_case("bad start_date", {**PIT, "start_date": "last tuesday"}, "start_date"),
    config_case("plain http api_url", {**PIT, "api_url": "http://services.leadconnectorhq.com"}, "https"),
    config_case("not a URL", {**PIT, "api_url": "ftp://example.com"}, "api_url"),
    config_case("page_size 0", {**PIT, "page_size": 0}, "page_size"),
    config_case("page_size 9000", {**PIT, "page_size": 9000}, "page_size"),
    config_case("page_size as text", {**PIT, "page_size": "100"}, "page_size"),
    config_case(
        "unreadable token store",
        {**OAUTH, "refresh_token": FAKE_REFRESH, "token_store_path": "{folder}"},
        "token store",
    ),
    Case("missing config file", ("--config", "{folder}/absent.json"), "does not exist"),
    Case("config not JSON", ("--config", "{config.json}"), "not valid JSON", (("config.json", '{"a": '),)),
    Case("config not an object", ("--config", "{config.json}"), "JSON object", (("config.json", "[1, 2]"),)),
    Case(
        "state not JSON",
        ("--config", "{config.json}", "--state", "{state.json}"),
        "--state file",
        (("config.json", json.dumps(PIT)), ("state.json", "{")),
    ),
    Case(
        "state bookmark not a timestamp",
        ("--config", "{config.json}", "--state", "{state.json}"),
        "not a timestamp",
        (
            ("config.json", json.dumps(PIT)),
            ("state.json", json.dumps({"bookmarks": {"contacts": {"replication_key_value": "yesterday"}}})),
        ),
    ),
    Case(
        "catalog without streams",
        ("--config", "{config.json}", "--catalog", "{catalog.json}"),
        "'streams' list",
        (("config.json", json.dumps(PIT)), ("catalog.json", '{"streams": 5}')),
    ),
    Case("unknown option", ("--sync-everything",), "No such option"),
    Case("option without its value", ("--config",), "requires an argument"),
]


def run_case(case: Case, folder: Path, transcript: Transcript) -> subprocess.CompletedProcess[str]:
    """Write the case's files into its own folder and run the CLI."""
    own = folder / case.name.replace(" ", "-")
    own.mkdir()
    values = {"folder": str(own)}
    for file_name, text in case.files:
        (own / file_name).write_text(text.replace("{folder}", str(own)), encoding="utf-8")
        values[file_name] = str(own / file_name)
    arguments = []
    for template in case.arguments:
        argument = template
        for key, value in values.items():
            argument = argument.replace("{" + key + "}", value)
        arguments.append(argument)
    return transcript.run_cli(*arguments, timeout=60)


def bad_config_and_cli_input(folder: Path) -> Transcript:
    """Every case exits non-zero with its problem named, in a line or two, never a traceback."""
    transcript = Transcript("bad_config_and_cli_input")
    transcript.secrets |= {FAKE_PIT, FAKE_SECRET, FAKE_REFRESH}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda case: (case, run_case(case, folder, transcript)), CASES))
    failures = []
    for case, done in results:
        problems = [
            problem
            for problem, bad in (
                (f"exit {done.returncode}", done.returncode == 0),
                ("a traceback", "Traceback" in done.stderr),
                (f"no mention of {case.named!r}", case.named not in done.stderr),
                (
                    "non-Singer output on stdout",
                    not all(_is_message(line) for line in done.stdout.splitlines()),
                ),
            )
            if bad
        ]
        if problems:
            failures.append(f"{case.name}: {', '.join(problems)}: {done.stderr[-300:]!r}")
    assert failures == []
    return transcript


def _is_message(line: str) -> bool:
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") in {"SCHEMA", "RECORD", "STATE"}
