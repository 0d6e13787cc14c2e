"""singer-sdk's standard tap tests against the session-wide mocked GHL."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_ghl_contacts.tap import TapGHLContacts
from tests.conftest import STANDARD_SUITE_SANDBOX, STANDARD_SUITE_URL
from tests.helpers import pit_config

TestTapGHLContacts = get_tap_test_class(
    tap_class=TapGHLContacts,
    config=pit_config(
        STANDARD_SUITE_SANDBOX, STANDARD_SUITE_URL, start_date="2023-01-01T00:00:00Z", page_size=10
    ),
    suite_config=SuiteConfig(max_records_limit=500),
)
