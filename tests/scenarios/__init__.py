"""Failure scenarios, each a function that runs the tap and returns its Transcript.

Every scenario asserts its own guarantee (same records as a clean run, a clear message,
resumable state...). Its test module runs it alone; tests/test_secrets.py runs all of
them and scans every byte they let out for the secrets they used.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tap_ghl_contacts.sandbox import SandboxServer
from tests.helpers import tap_cli

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_ghl_contacts.sandbox import SandboxAPI


@dataclass
class Transcript:
    """Everything a scenario let out of the tap, and the secrets that must not be in it."""

    name: str
    outputs: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def keep(self, *texts: str) -> None:
        """Add output to scan: stdout, stderr, a state or log file."""
        self.outputs.extend(texts)

    def keep_file(self, path: Path) -> None:
        """Add a file the tap or a target wrote (a state file, a log)."""
        if path.exists():
            self.keep(path.read_text(encoding="utf-8", errors="replace"))

    def run_cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run the tap's CLI to completion, keeping both of its streams."""
        done = subprocess.run(tap_cli(*args), capture_output=True, text=True, timeout=timeout, check=False)
        self.keep(done.stdout, done.stderr)
        return done

    def guard(self, sandbox: SandboxAPI) -> None:
        """Add every secret the sandbox knows or has issued (call after the runs)."""
        self.secrets |= sandbox.secrets()

    def leaks(self) -> list[str]:
        """One line per secret found in an output (the secret itself is not repeated)."""
        return [
            f"{self.name}: output #{number} holds a secret ending ...{secret[-4:]}"
            for number, text in enumerate(self.outputs)
            for secret in self.secrets
            if secret and secret in text
        ]


#: A scenario runs in its own scratch folder.
Scenario = Callable[[Path], Transcript]


@contextmanager
def served(sandbox: SandboxAPI) -> Iterator[str]:
    """Serve ``sandbox`` on a real loopback socket for the duration; yield its base URL."""
    server = SandboxServer(sandbox).start()
    try:
        yield server.url
    finally:
        server.stop()
