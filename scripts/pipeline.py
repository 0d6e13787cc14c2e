"""Run the Meltano pipeline (sandbox -> tap-ghl-contacts -> target-duckdb) and read the result.

Shared by ``make demo`` (scripts/demo.py) and the end-to-end test.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STREAMS = ("contacts", "tasks", "notes", "appointments")
SCHEMA = "ghl"


@dataclass(frozen=True)
class PipelinePaths:
    """Where one pipeline keeps its files (so demo and tests never share state)."""

    root: Path

    @property
    def warehouse(self) -> Path:
        """The DuckDB file target-duckdb writes."""
        return self.root / "warehouse.duckdb"

    @property
    def meltano_db(self) -> Path:
        """Meltano's system database: incremental state lives here."""
        return self.root / "meltano.db"

    @property
    def token_store(self) -> Path:
        """The tap's rotating OAuth tokens."""
        return self.root / "tokens.json"

    @property
    def log(self) -> Path:
        """Meltano's output, kept for when something fails."""
        return self.root / "meltano.log"


def meltano_env(paths: PipelinePaths, credentials: dict[str, Any], **tap_settings: str) -> dict[str, str]:
    """Settings for both plugins, as the environment variables Meltano reads."""
    return {
        **os.environ,
        **{f"TAP_GHL_CONTACTS_{key.upper()}": value for key, value in tap_settings.items()},
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_DATABASE_URI": f"sqlite:///{paths.meltano_db}",
        "TAP_GHL_CONTACTS_API_URL": credentials["api_url"],
        "TAP_GHL_CONTACTS_LOCATION_ID": credentials["location_id"],
        "TAP_GHL_CONTACTS_CLIENT_ID": credentials["client_id"],
        "TAP_GHL_CONTACTS_CLIENT_SECRET": credentials["client_secret"],
        "TAP_GHL_CONTACTS_REFRESH_TOKEN": credentials["refresh_token"],
        "TAP_GHL_CONTACTS_TOKEN_STORE_PATH": str(paths.token_store),
        "TARGET_DUCKDB_FILEPATH": str(paths.warehouse),
    }


def meltano(paths: PipelinePaths, env: dict[str, str], *args: str) -> None:
    """Run a meltano command in the repository's project; its output goes to the log."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.log.open("a", encoding="utf-8") as log:
        log.write(f"\n$ meltano {' '.join(args)}\n")
        log.flush()
        done = subprocess.run(  # noqa: S603
            [str(BIN / "meltano"), *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(paths.log.read_text(encoding="utf-8").splitlines()[-25:])
        command = " ".join(args)
        msg = f"meltano {command} failed with exit code {done.returncode}; end of {paths.log}:\n{tail}"
        raise RuntimeError(msg)


def run_pipeline(paths: PipelinePaths, credentials: dict[str, Any], **tap_settings: str) -> float:
    """Install the two plugins if needed and run the pipeline once; returns its start time."""
    env = meltano_env(paths, credentials, **tap_settings)
    meltano(paths, env, "install", "tap-ghl-contacts", "target-duckdb")
    started = time.time()
    meltano(paths, env, "run", "tap-ghl-contacts", "target-duckdb")
    return started


@contextlib.contextmanager
def sandbox_process(credentials_file: Path, *options: str) -> Iterator[dict[str, Any]]:
    """Run ``ghl-sandbox`` (with ``options``) in the background; yield the credentials it writes."""
    credentials_file.unlink(missing_ok=True)
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "ghl-sandbox"), "--credentials-file", str(credentials_file), *options],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not credentials_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                msg = f"ghl-sandbox did not start: {process.stderr.read() if process.stderr else ''}"
                raise RuntimeError(msg)
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written just before the server starts serving
        yield json.loads(credentials_file.read_text(encoding="utf-8"))
    finally:
        process.terminate()
        process.wait(timeout=30)


def warehouse(paths: PipelinePaths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the DuckDB file."""
    return duckdb.connect(str(paths.warehouse), read_only=True)


def table(name: str) -> str:
    """A table's name in the warehouse."""
    return f'"{SCHEMA}"."{name}"'
