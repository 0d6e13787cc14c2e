"""Fixtures: the sandbox behind requests-mock (session-wide) or on a real local socket."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
import requests_mock

from tap_ghl_contacts.sandbox import SandboxAPI, SandboxServer
from tests.helpers import mount_on_mocker
from tests.sandboxes import sandbox_with

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# The standard singer-sdk suite builds its config at import time, so its sandbox is fixed.
STANDARD_SUITE_URL = "https://standard-suite.ghl.test"
STANDARD_SUITE_SANDBOX = sandbox_with(40, tie_every=3, full_rows=True)
_hosts = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def mocked_http() -> Iterator[requests_mock.Mocker]:
    """Mock every *.ghl.test host for the whole session; loopback stays real."""
    with requests_mock.Mocker(real_http=True, case_sensitive=True) as mocker:
        mount_on_mocker(mocker, STANDARD_SUITE_SANDBOX, STANDARD_SUITE_URL)
        yield mocker


@pytest.fixture
def mock_sandbox(mocked_http: requests_mock.Mocker) -> Callable[[SandboxAPI], str]:
    """Serve a sandbox at a fresh mocked host (no socket) and return its base URL."""

    def mount(sandbox: SandboxAPI) -> str:
        url = f"https://t{next(_hosts)}.ghl.test"
        mount_on_mocker(mocked_http, sandbox, url)
        return url

    return mount


@pytest.fixture
def serve_sandbox() -> Iterator[Callable[[SandboxAPI], str]]:
    """Serve a sandbox on 127.0.0.1 over real HTTP and return its base URL."""
    servers: list[SandboxServer] = []

    def serve(sandbox: SandboxAPI) -> str:
        server = SandboxServer(sandbox).start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()
