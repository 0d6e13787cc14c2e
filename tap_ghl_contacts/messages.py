"""How the tap's Singer messages leave the process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from singer_sdk.io_base import SingerWriter
from singer_sdk.singerlib.messages import SchemaMessage
from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.singerlib.messages import Message


class GHLMessageWriter(SingerWriter):
    """Sends each stream's SCHEMA once, and again only if it changes.

    singer-sdk restarts a child stream for every parent record and sends its SCHEMA
    each time: three SCHEMA messages per contact. Targets such as target-duckdb flush
    their batches on every SCHEMA, which turns a bulk load into thousands of one-row
    loads.
    """

    def __init__(self) -> None:
        """Remember the last SCHEMA sent per stream."""
        super().__init__()
        self._schemas: dict[str, SchemaMessage] = {}

    @override
    def write_message(self, message: Message) -> None:
        if isinstance(message, SchemaMessage):
            if self._schemas.get(message.stream) == message:
                return
            self._schemas[message.stream] = message
        super().write_message(message)
