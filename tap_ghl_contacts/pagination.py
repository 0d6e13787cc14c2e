"""Cursor paging for POST /contacts/search.

Page numbers stop at 10,000 results (page x pageLimit); the ``searchAfter`` cursor
that GHL puts on every row does not, and it carries the sort key plus a tie-breaker,
so contacts sharing one ``dateUpdated`` across a page boundary are neither lost nor
repeated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_ghl_contacts.client import response_body
from tap_ghl_contacts.errors import APIResponseError

if TYPE_CHECKING:
    import requests

Cursor = list[Any]


class SearchAfterPaginator(BaseAPIPaginator[Cursor | None]):
    """Follows the ``searchAfter`` of the last row until a page comes back short."""

    def __init__(self, page_size: int, records_key: str) -> None:
        """Expect full pages of ``page_size`` rows under ``records_key``."""
        super().__init__(None)
        self._page_size = page_size
        self._records_key = records_key

    def _rows(self, response: requests.Response) -> list[Any]:
        body = response_body(response)
        rows = body.get(self._records_key) if isinstance(body, dict) else None
        return rows if isinstance(rows, list) else []

    @override
    def has_more(self, response: requests.Response) -> bool:
        # A short page is the last one: no extra empty request.
        return len(self._rows(response)) >= self._page_size

    @override
    def get_next(self, response: requests.Response) -> Cursor | None:
        last = self._rows(response)[-1]
        cursor = last.get("searchAfter") if isinstance(last, dict) else None
        if not isinstance(cursor, list) or not cursor:
            msg = (
                "GHL returned a full contacts search page whose last row has no "
                "searchAfter cursor, so the next page cannot be requested safely."
            )
            raise APIResponseError(msg)
        return cursor


class SkipPaginator(BaseAPIPaginator[int | None]):
    """``skip``/``limit`` paging that stops at the first short page (no extra empty request)."""

    def __init__(self, limit: int, records_key: str) -> None:
        """Pages of ``limit`` rows under ``records_key``."""
        super().__init__(None)
        self._limit = limit
        self._records_key = records_key

    @override
    def has_more(self, response: requests.Response) -> bool:
        body = response_body(response)
        rows = body.get(self._records_key) if isinstance(body, dict) else None
        return isinstance(rows, list) and len(rows) >= self._limit

    @override
    def get_next(self, response: requests.Response) -> int | None:
        return (self.current_value or 0) + self._limit
