"""The ``tap-ghl-contacts`` command: the SDK's CLI behind a check of the files it is given.

singer-sdk reads ``--config``, ``--state`` and ``--catalog`` before any tap code runs, and a
missing file or broken JSON there ends in a Python traceback. Those files are checked
here first, so bad input gets one line naming the file and the problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tap_ghl_contacts.tap import TapGHLContacts

#: Exit code for command-line input the tap cannot use (click uses 2 for usage errors too).
BAD_INPUT_EXIT = 2
FILE_OPTIONS = ("--config", "--state", "--catalog")


def files_given(argv: list[str]) -> list[tuple[str, str]]:
    """(option, path) for every file option on the command line, in order."""
    found = []
    for index, argument in enumerate(argv):
        option, equals, value = argument.partition("=")
        if option not in FILE_OPTIONS:
            continue
        if equals:
            found.append((option, value))
        elif index + 1 < len(argv):
            found.append((option, argv[index + 1]))
    return found


def file_problem(option: str, path: str) -> str | None:
    """Why the file given to ``option`` cannot be used, or None."""
    if option == "--config" and path == "ENV":
        return None
    try:
        content: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{option} file {path!r} does not exist."
    except json.JSONDecodeError as exc:
        # The position only: the text itself can hold credentials.
        return f"{option} file {path!r} is not valid JSON (line {exc.lineno}, column {exc.colno})."
    except (OSError, UnicodeDecodeError) as exc:
        return f"{option} file {path!r} cannot be read ({type(exc).__name__})."
    return shape_problem(option, path, content)


def shape_problem(option: str, path: str, content: Any) -> str | None:  # noqa: ANN401
    """Why parsed JSON cannot be a config, state or catalog, or None."""
    if not isinstance(content, dict):
        return f"{option} file {path!r} must hold a JSON object, not {type(content).__name__}."
    if option == "--catalog":
        streams = content.get("streams")
        if not isinstance(streams, list) or not all(isinstance(s, dict) for s in streams):
            return f"{option} file {path!r} must have a 'streams' list of stream objects."
    return None


def main(argv: list[str] | None = None) -> None:
    """Check the files named on the command line, then run the SDK's CLI."""
    arguments = sys.argv[1:] if argv is None else argv
    for option, path in files_given(arguments):
        problem = file_problem(option, path)
        if problem:
            print(f"tap-ghl-contacts: {problem}", file=sys.stderr)  # noqa: T201  (the one line)
            sys.exit(BAD_INPUT_EXIT)
    TapGHLContacts.cli(arguments)
