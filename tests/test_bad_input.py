"""Bad config and command-line input, through the real CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.scenarios.bad_input import bad_config_and_cli_input

if TYPE_CHECKING:
    from pathlib import Path


def test_every_bad_input_gets_one_clear_message_and_no_traceback(tmp_path: Path) -> None:
    transcript = bad_config_and_cli_input(tmp_path)
    assert transcript.leaks() == []
