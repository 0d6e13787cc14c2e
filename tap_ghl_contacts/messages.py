"""How the tap's Singer messages leave the process."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.messages import RecordMessage, SchemaMessage
from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.singerlib.messages import Message


class GHLMessageWriter(MsgSpecWriter):
    """msgspec-encoded messages; each stream's SCHEMA once; no flush per RECORD.

    singer-sdk restarts a child stream for every parent record and sends its SCHEMA
    each time: three SCHEMA messages per contact. Targets such as target-duckdb flush
    their batches on every SCHEMA, which turns a bulk load into thousands of one-row
    loads. RECORDs are buffered; everything else (SCHEMA, STATE) flushes stdout, so a
    target always has every record that a STATE it reads covers.
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
        stdout = sys.stdout.buffer
        stdout.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            stdout.flush()
