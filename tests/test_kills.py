"""kill -9 at many points of a long sync, resumed from the last STATE: nothing lost, repeats bounded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.scenarios.kills import MOST_CONTACTS_REPEATED, PHASES, run_kills, terminated_and_resumed

if TYPE_CHECKING:
    from pathlib import Path


def test_a_sync_killed_again_and_again_loses_nothing_and_repeats_little(tmp_path: Path) -> None:
    run = run_kills(tmp_path)  # also asserts every stream complete and every repeat allowed
    kills = [attempt.kill for attempt in run.attempts if attempt.kill is not None]
    assert len(kills) >= 10
    assert {kill.phase for kill in kills} == PHASES
    assert run.attempts[-1].exit_code == 0
    for cost in run.costs:
        assert cost.surplus == [], cost
        assert cost.allowed_contacts <= MOST_CONTACTS_REPEATED, cost
        assert all(cost.repeated[stream] <= cost.allowed[stream] for stream in cost.repeated), cost
    assert sum(cost.repeated["appointments"] for cost in run.costs) > 0  # unfinished scans ran again
    assert run.transcript.leaks() == []


def test_a_terminated_sync_writes_a_last_state_and_resumes_without_repeats(tmp_path: Path) -> None:
    assert terminated_and_resumed(tmp_path).leaks() == []
