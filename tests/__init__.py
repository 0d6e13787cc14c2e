"""Tests for tap-ghl-contacts."""
