"""Fixtures: a fake GHL behind requests-mock (session-wide) or a real local HTTP server."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest
import requests_mock

from tests.fake_ghl import FakeGHL
from tests.helpers import mount_on_mocker, werkzeug_handler

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_httpserver import HTTPServer

# The standard singer-sdk suite builds its config at import time, so its fake is fixed.
STANDARD_SUITE_URL = "https://standard-suite.ghl.test"
STANDARD_SUITE_FAKE = FakeGHL.with_contacts(40, tie_every=3, full_rows=True)
_hosts = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def mocked_http() -> Iterator[requests_mock.Mocker]:
    """Mock every *.ghl.test host for the whole session; loopback stays real."""
    with requests_mock.Mocker(real_http=True, case_sensitive=True) as mocker:
        mount_on_mocker(mocker, STANDARD_SUITE_FAKE, STANDARD_SUITE_URL)
        yield mocker


@pytest.fixture
def mount_fake(mocked_http: requests_mock.Mocker) -> Callable[[FakeGHL], str]:
    """Serve a fake at a fresh mocked host and return its base URL."""

    def mount(fake: FakeGHL) -> str:
        url = f"https://t{next(_hosts)}.ghl.test"
        mount_on_mocker(mocked_http, fake, url)
        return url

    return mount


@pytest.fixture
def serve_fake(httpserver: HTTPServer) -> Callable[[FakeGHL], str]:
    """Serve a fake from a real HTTP server on 127.0.0.1 and return its base URL."""

    def serve(fake: FakeGHL) -> str:
        httpserver.expect_request(re.compile(r"^/.*")).respond_with_handler(werkzeug_handler(fake))
        return httpserver.url_for("").rstrip("/")

    return serve
