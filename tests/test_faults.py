"""Faults on the wire: same records as a clean run, or a loud failure that resumes losslessly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.scenarios import faults

if TYPE_CHECKING:
    from pathlib import Path

    from tests.scenarios import Scenario


@pytest.mark.parametrize("scenario", faults.SCENARIOS, ids=lambda s: s.__name__)
def test_a_sync_under_faults_delivers_what_a_clean_sync_does(scenario: Scenario, tmp_path: Path) -> None:
    transcript = scenario(tmp_path)
    assert transcript.leaks() == []
