"""The built wheel carries the schemas, so a non-editable install discovers every stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.readme_settings import about_settings_table

REPO = Path(__file__).resolve().parent.parent
STREAMS = {"contacts", "tasks", "notes", "appointments"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("tap_ghl_contacts-*.whl"))


def test_wheel_ships_one_schema_per_stream(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"tap_ghl_contacts/schemas/{s}.json" for s in STREAMS} <= set(names)


def test_installed_wheel_discovers_every_stream(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    program = (
        "import sys, tap_ghl_contacts; print(tap_ghl_contacts.__file__, file=sys.stderr); "
        "from tap_ghl_contacts.tap import TapGHLContacts; TapGHLContacts.cli()"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "--discover",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stderr  # the installed copy ran, not the source tree
    catalog = json.loads(done.stdout)
    assert {s["tap_stream_id"] for s in catalog["streams"]} == STREAMS
    assert all(len(s["schema"]["properties"]) > 5 for s in catalog["streams"])


def test_readme_settings_table_matches_about() -> None:
    assert about_settings_table() in (REPO / "README.md").read_text(encoding="utf-8")
