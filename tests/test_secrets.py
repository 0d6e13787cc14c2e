"""One test runs every failure scenario and scans all of their output for secrets.

The scenarios (tests/scenarios) use a PIT, a client secret, refresh tokens the sandbox
issues and rotates, and fake credentials in bad configs; every byte they let out (stdout,
stderr, state files) must be free of every one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.scenarios import bad_input, faults, kills, rotation, shapes

if TYPE_CHECKING:
    from pathlib import Path

    from tests.scenarios import Scenario

EVERY_SCENARIO: list[Scenario] = [
    *faults.SCENARIOS,
    *rotation.SCENARIOS,
    kills.kill_and_resume,
    kills.terminated_and_resumed,
    bad_input.bad_config_and_cli_input,
    shapes.odd_shapes_are_kept,
]


def test_no_scenario_lets_a_secret_out(tmp_path: Path) -> None:
    transcripts = []
    for number, scenario in enumerate(EVERY_SCENARIO):
        folder = tmp_path / f"{number:02d}-{scenario.__name__}"
        folder.mkdir()
        transcripts.append(scenario(folder))
    assert all(t.secrets and t.outputs for t in transcripts), "a scenario kept nothing to scan"
    assert [leak for t in transcripts for leak in t.leaks()] == []
    scanned = sum(len(text) for t in transcripts for text in t.outputs)
    assert scanned > 100_000, scanned  # the scan saw real output, not an empty run
