"""Fetch child lists ahead of time in a bounded pool; hand them out in parent order.

singer-sdk syncs a child stream for one parent record at a time, so at 200 ms per
request a location with 50,000 contacts spends hours waiting on the network. Requests
for the next contacts' children run concurrently here (under the shared pacer), while
records still leave through the one writer in the main thread, in parent order, and
the parent's bookmark still only moves once a contact's children are written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Hashable

Fetch = Callable[[], list[dict[str, Any]]]
Job = tuple[Future[list[dict[str, Any]]], Fetch]


class ChildPrefetcher:
    """Daemon worker threads plus the futures they fill for keys the main thread will ask for.

    Hand-written rather than a ``ThreadPoolExecutor``: its workers are joined when the
    interpreter exits, so a failed run would hang until every in-flight fetch finished
    its retries. These workers are daemons and stop taking work once cancelled.
    """

    def __init__(self, workers: int) -> None:
        """Run up to ``workers`` fetches at once."""
        self.workers = workers
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # None: stop
        self._pending: dict[Hashable, Future[list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"ghl-prefetch-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            future, fetch = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fetch())
            except BaseException as exc:  # noqa: BLE001  (handed to the main thread by take)
                future.set_exception(exc)

    def submit(self, key: Hashable, fetch: Fetch) -> None:
        """Start fetching ``key`` in the background (once)."""
        with self._lock:
            if key in self._pending:
                return
            future: Future[list[dict[str, Any]]] = Future()
            self._pending[key] = future
        self._queue.put((future, fetch))

    def take(self, key: Hashable) -> list[dict[str, Any]] | None:
        """The fetched records for ``key`` (waiting if needed), or ``None`` if never submitted.

        A fetch that failed raises its error here, in the main thread.
        """
        with self._lock:
            future = self._pending.pop(key, None)
        return None if future is None else future.result()

    def cancel_all(self) -> None:
        """Drop everything not yet started (the run is stopping)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.cancel()

    def shutdown(self) -> None:
        """Cancel what is queued and let the workers end."""
        self.cancel_all()
        for _ in self._threads:
            self._queue.put(None)
