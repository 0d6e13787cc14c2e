"""Pacing: stay under GHL's rate limits instead of bouncing off them.

GHL allows 100 requests per 10 s and 200,000 a day per app (or PIT) and location, and
reports its view on every response (``X-RateLimit-*``). One ``RequestPacer`` per tap
(one location) is shared by every stream and thread: it keeps a sliding window of the
requests it sent under a ceiling just below GHL's, trusts GHL's ``Remaining`` when that
is lower (other clients share the budget), waits as told after a 429 without spending
the retries meant for real failures, and stops the run before the daily quota reaches
a reserve.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from typing_extensions import override

from tap_ghl_contacts.errors import TapGHLError

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

DEFAULT_INTERVAL_SECONDS = 10.0
# Of GHL's advertised per-interval maximum, use at most this share.
HEADROOM = 0.95
TOO_MANY_REQUESTS = 429
MAX_429_WAITS = 20
EXIT_DAILY_RESERVE = 3


class DailyQuotaReserveError(TapGHLError):
    """The day's request quota is down to the reserve: stop, resume tomorrow."""

    exit_code = EXIT_DAILY_RESERVE


class RequestPacer:
    """Decides when the next request may leave; thread-safe."""

    def __init__(
        self,
        *,
        ceiling: int,
        daily_reserve: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Send at most ``ceiling`` requests per interval; keep ``daily_reserve`` unspent."""
        self.configured_ceiling = ceiling
        self.ceiling = ceiling
        self.interval = DEFAULT_INTERVAL_SECONDS
        self.daily_reserve = daily_reserve
        self.daily_remaining: int | None = None
        self._clock = clock
        self._sent: deque[float] = deque()
        self._server_remaining: int | None = None
        self._server_seen_sent_at = 0.0
        self._server_seen_at = 0.0
        self._hold_until = 0.0
        # GHL counts a request when it arrives, up to one round trip after we sent it, so a
        # slot frees one interval plus the slowest round trip seen after its send.
        self._round_trip = 0.0
        self._cond = threading.Condition()
        self.requests_sent = 0
        self._answered = 0
        self.rate_limited = 0
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until a request may be sent, and count it as sent."""
        with self._cond:
            while True:
                self._check_daily_reserve()
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._sent.append(now)
                    self.requests_sent += 1
                    return
                self.waited_seconds += wait
                self._cond.wait(timeout=wait)

    def _wait_needed(self, now: float) -> float:
        if now < self._hold_until:
            return self._hold_until - now
        span = self.interval + self._round_trip
        while self._sent and self._sent[0] <= now - span:
            self._sent.popleft()
        waits = []
        if len(self._sent) >= self.ceiling:
            waits.append(self._sent[0] + span - now)
        server_fresh = now - self._server_seen_at < self.interval
        if self._server_remaining is not None and server_fresh:
            sent_since = sum(1 for moment in self._sent if moment > self._server_seen_sent_at)
            if self._server_remaining - sent_since <= 0:
                # GHL counts requests we cannot see (other clients): wait for its window.
                waits.append(self._server_seen_at + self.interval - now)
        return max(waits, default=0.0)

    def _check_daily_reserve(self) -> None:
        in_flight = self.requests_sent - self._answered
        if self.daily_remaining is not None and self.daily_remaining - in_flight <= self.daily_reserve:
            msg = (
                f"GHL's daily request quota for this location is down to {self.daily_remaining} "
                f"(daily_quota_reserve is {self.daily_reserve}); stopping so other integrations "
                "keep working. The state emitted so far is resumable: run again after the quota "
                "resets (within 24 hours)."
            )
            raise DailyQuotaReserveError(msg)

    def observe(self, headers: Any, sent_at: float) -> None:  # noqa: ANN401
        """Learn GHL's limits and its view of what is left from a response's headers."""
        with self._cond:
            self._answered = min(self._answered + 1, self.requests_sent)
            self._round_trip = max(self._round_trip, self._clock() - sent_at)
            interval_ms = _int(headers.get("X-RateLimit-Interval-Milliseconds"))
            if interval_ms:
                self.interval = interval_ms / 1000
            maximum = _int(headers.get("X-RateLimit-Max"))
            if maximum:
                self.ceiling = max(1, min(self.configured_ceiling, int(maximum * HEADROOM)))
            remaining = _int(headers.get("X-RateLimit-Remaining"))
            if remaining is not None and sent_at >= self._server_seen_sent_at:
                self._server_remaining = remaining
                self._server_seen_sent_at = sent_at
                self._server_seen_at = self._clock()
            daily = _int(headers.get("X-RateLimit-Daily-Remaining"))
            if daily is not None:
                self.daily_remaining = (
                    daily if self.daily_remaining is None else min(self.daily_remaining, daily)
                )
            self._cond.notify_all()

    def hold(self, seconds: float) -> None:
        """GHL said 429: nobody sends for ``seconds``."""
        with self._cond:
            self.rate_limited += 1
            self._hold_until = max(self._hold_until, self._clock() + seconds)
            self._cond.notify_all()

    def now(self) -> float:
        """The pacer's clock."""
        return self._clock()


def _int(value: Any) -> int | None:  # noqa: ANN401
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def retry_after_seconds(response: requests.Response, fallback: float) -> float:
    """Retry-After (seconds) when GHL sends it, else one rate-limit interval."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return fallback


class PacedAdapter(HTTPAdapter):
    """A transport that asks the pacer before every send and retries 429s itself.

    429s are waited out here, as many times as GHL asks (up to ``MAX_429_WAITS``), so they
    never use up the retries singer-sdk keeps for real failures.
    """

    def __init__(self, pacer: RequestPacer, pool_size: int) -> None:
        """Share ``pacer``; keep ``pool_size`` connections for concurrent requests."""
        super().__init__(pool_connections=2, pool_maxsize=pool_size)
        self.pacer = pacer

    @override
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        waits = 0
        while True:
            self.pacer.acquire()
            sent_at = self.pacer.now()
            response = super().send(request, *args, **kwargs)
            self.pacer.observe(response.headers, sent_at)
            if response.status_code != TOO_MANY_REQUESTS or waits >= MAX_429_WAITS:
                return response
            waits += 1
            wait = retry_after_seconds(response, self.pacer.interval)
            response.close()
            self.pacer.hold(wait)
