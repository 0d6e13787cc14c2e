"""A local GHL API v2 sandbox: realistic seeded data behind GHL's rules, no account needed."""

from __future__ import annotations

from tap_ghl_contacts.sandbox.account import Account
from tap_ghl_contacts.sandbox.api import Credentials, Fault, RateLimits, Reply, SandboxAPI
from tap_ghl_contacts.sandbox.server import SandboxServer

__all__ = ["Account", "Credentials", "Fault", "RateLimits", "Reply", "SandboxAPI", "SandboxServer"]
