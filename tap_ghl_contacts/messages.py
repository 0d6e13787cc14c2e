"""How the tap's Singer messages leave the process."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.helpers._state import StateWriter
from singer_sdk.singerlib.messages import RecordMessage, SchemaMessage
from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk.helpers.types import TapState
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
        line = self.format_message(message)
        if isinstance(message, RecordMessage):
            sys.stdout.buffer.write(line)
        else:
            self.write_line(line)

    def write_line(self, line: bytes | bytearray) -> None:
        """Write one encoded message and flush (a STATE: the target must have what it covers)."""
        stdout = sys.stdout.buffer
        stdout.write(line)
        stdout.flush()


class GHLStateWriter(StateWriter):
    """STATE messages encoded once, compared as bytes.

    singer-sdk deep-copies the whole state after each STATE (to skip repeats) and turns
    it into a dict again to write it; with the contacts lookback memory in it (up to
    1,000 entries) that was a fifth of the CPU of a contacts sync.
    """

    def __init__(self, message_writer: GHLMessageWriter) -> None:
        """Write through ``message_writer``; nothing written yet."""
        super().__init__(message_writer)
        self._writer = message_writer
        self._last_line: bytes | None = None

    @override
    def write_state(self, state: TapState) -> None:
        line = bytes(serialize_jsonl({"type": "STATE", "value": state}))
        if line != self._last_line:
            self._writer.write_line(line)
            self._last_line = line
