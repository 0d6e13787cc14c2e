"""One measured tap run in its own process: ``python benchmarks/tap_run.py CONFIG [STATE] [STREAMS]``.

Prints one JSON line to stderr: wall seconds of ``sync_all`` (imports excluded), records
written, peak RSS in MiB and the final STATE. RECORDs go to /dev/null, as to a target.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from pathlib import Path

from typing_extensions import override


def main() -> None:
    """Run the sync the arguments describe."""
    # Imported here, before the clock starts: start-up is not what is measured.
    from tap_ghl_contacts.tap import TapGHLContacts  # noqa: PLC0415
    from tests.helpers import selecting  # noqa: PLC0415

    arguments = [*sys.argv[1:], "", ""]
    config = json.loads(Path(arguments[0]).read_text(encoding="utf-8"))
    state = json.loads(Path(arguments[1]).read_text(encoding="utf-8")) if arguments[1] else None
    wanted = arguments[2].split(",") if arguments[2] else None
    catalog = selecting(*wanted) if wanted else None
    sink = open(os.devnull, "wb")  # noqa: SIM115, PTH123  (lives as long as the process)
    counting = _Counting(sink)
    sys.stdout = io.TextIOWrapper(counting, encoding="utf-8")
    tap = TapGHLContacts(config=config, state=state, catalog=catalog)
    started = time.perf_counter()
    tap.sync_all()
    elapsed = time.perf_counter() - started
    sys.stdout.flush()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "seconds": elapsed,
        "records": counting.records,
        "peak_rss_mib": peak_mib,
        "state": counting.state,
    }
    print(json.dumps(result), file=sys.stderr)


class _Counting(io.RawIOBase):
    """A byte sink that counts RECORD lines and keeps the last STATE."""

    def __init__(self, sink: io.BufferedWriter) -> None:
        self._sink = sink
        self.records = 0
        self.state: object = None
        self._tail = b""

    @override
    def writable(self) -> bool:
        return True

    @override
    def write(self, data: bytes) -> int:  # type: ignore[override]
        chunk = self._tail + bytes(data)
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                self.records += 1
            elif line.startswith(b'{"type":"STATE"'):
                self.state = json.loads(line)["value"]
        self._sink.write(data)
        return len(data)


if __name__ == "__main__":
    main()
