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
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

Records = list[dict[str, Any]]


class ChildPrefetcher:
    """Daemon worker threads plus the futures they fill for keys the main thread will ask for.

    Hand-written rather than a ``ThreadPoolExecutor``: its workers are joined when the
    interpreter exits, so a failed run would hang until every in-flight fetch finished
    its retries. These workers are daemons and skip work that was cancelled.
    """

    def __init__(self, workers: int) -> None:
        """Run up to ``workers`` fetches at once."""
        self.workers = workers
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._pending: dict[Hashable, Future[Records]] = {}
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"ghl-prefetch-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:  # daemon threads: they end with the process
            self._queue.get()()

    def _futures(self, keys: list[Hashable]) -> list[Future[Records]]:
        with self._lock:
            futures = []
            for key in keys:
                future: Future[Records] = Future()
                self._pending[key] = future
                futures.append(future)
            return futures

    def submit(self, key: Hashable, fetch: Callable[[], Records]) -> None:
        """Start fetching the records of ``key`` in the background."""
        self.submit_batch([key], lambda: {key: fetch()})

    def submit_batch(self, keys: list[Hashable], fetch: Callable[[], dict[Hashable, Records]]) -> None:
        """Fetch several keys with one job (one request for many contacts); absent keys get []."""
        futures = self._futures(keys)

        def job() -> None:
            live = [
                (key, f) for key, f in zip(keys, futures, strict=True) if f.set_running_or_notify_cancel()
            ]
            if not live:
                return
            try:
                found = fetch()
            except BaseException as exc:  # noqa: BLE001  (handed to the main thread by take)
                for _, future in live:
                    future.set_exception(exc)
                return
            for key, future in live:
                future.set_result(found.get(key, []))

        self._queue.put(job)

    def is_pending(self, key: Hashable) -> bool:
        """Whether ``key`` was submitted and not yet taken."""
        with self._lock:
            return key in self._pending

    def take(self, key: Hashable) -> Records | None:
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
