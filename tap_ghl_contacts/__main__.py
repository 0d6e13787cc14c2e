"""Run the tap with ``python -m tap_ghl_contacts``."""

from __future__ import annotations

from tap_ghl_contacts.cli import main

main()
