"""Run the sandbox with ``python -m tap_ghl_contacts.sandbox``."""

from __future__ import annotations

from tap_ghl_contacts.sandbox.server import main

main()
