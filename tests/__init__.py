"""Tests for tap-ghl-contacts."""

import pytest

# Scenarios (tests/scenarios) assert their own guarantees; let pytest explain those asserts.
pytest.register_assert_rewrite("tests.scenarios")
