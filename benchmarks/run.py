"""``make bench``: the tap against the local sandbox, next to baselines measured in the same run.

Prints a Markdown table (and writes it to benchmarks/results.md). Every row starts its
own sandbox process, so the tap and the sandbox never share a CPU-bound interpreter.
``BENCH_QUICK=1`` runs smaller sizes (a smoke test of the suite itself).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

if __package__ in {None, ""}:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.pipeline import REPO, sandbox_process

QUICK = os.environ.get("BENCH_QUICK") == "1"
SMALL, LARGE = (2_000, 10_000) if QUICK else (10_000, 100_000)
THROUGHPUT_CONTACTS = 10_000 if QUICK else 50_000
PACED_CONTACTS = 60 if QUICK else 300
PAGE = 500
UNTHROTTLED = {
    "max_requests_per_interval": 1_000_000,
    "page_size": PAGE,
    "start_date": "2020-01-01T00:00:00Z",
}


def tap_config(credentials: dict[str, Any], **settings: Any) -> dict[str, Any]:  # noqa: ANN401
    """PIT config for the sandbox (the benchmark is about requests, not OAuth)."""
    return {
        "api_url": credentials["api_url"],
        "location_id": credentials["location_id"],
        "access_token": credentials["access_token"],
        **settings,
    }


def run_tap(folder: Path, config: dict[str, Any], state: Any = None, streams: str = "") -> dict[str, Any]:  # noqa: ANN401
    """One tap run in its own process; its own measurements."""
    config_file, state_file = folder / "config.json", folder / "state.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    state_file.write_text(json.dumps(state) if state else "", encoding="utf-8")
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(REPO / "benchmarks" / "tap_run.py"),
            str(config_file),
            str(state_file) if state else "",
            streams,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"tap run failed:\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return measured


def stats(credentials: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's request counters."""
    counters: dict[str, Any] = requests.get(credentials["api_url"] + "/_sandbox/stats", timeout=30).json()
    return counters


def raw_loop(credentials: dict[str, Any]) -> tuple[float, int]:
    """Plain requests + json: the same search pages, every row re-serialised to /dev/null."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {credentials['access_token']}", "Version": "2021-07-28"}
    body: dict[str, Any] = {
        "locationId": credentials["location_id"],
        "pageLimit": PAGE,
        "sort": [{"field": "dateUpdated", "direction": "asc"}],
    }
    records = 0
    started = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: PTH123
        while True:
            rows = session.post(
                credentials["api_url"] + "/contacts/search", json=body, headers=headers, timeout=60
            ).json()["contacts"]
            sink.writelines(
                json.dumps({"type": "RECORD", "stream": "contacts", "record": row}) + "\n" for row in rows
            )
            records += len(rows)
            if len(rows) < PAGE:
                break
            body["searchAfter"] = rows[-1]["searchAfter"]
    return time.perf_counter() - started, records


def naive_requests(contacts: int) -> int:
    """Search pages plus one request per contact per child stream."""
    return math.ceil(contacts / PAGE) + 3 * contacts


Row = tuple[str, str, str, str]


def throughput(folder: Path) -> list[Row]:
    """Records per second, unthrottled: tap next to the raw loop, same pages, same run."""
    options = ["--contacts", str(THROUGHPUT_CONTACTS), "--no-rate-limit"]
    with sandbox_process(folder / "creds.json", *options) as credentials:
        raw_seconds, raw_records = raw_loop(credentials)
        tap = run_tap(folder, tap_config(credentials, **UNTHROTTLED), streams="contacts")
    tap_rate, raw_rate = tap["records"] / tap["seconds"], raw_records / raw_seconds
    return [
        (
            f"contacts/s unthrottled, {THROUGHPUT_CONTACTS:,} contacts",
            f"{tap_rate:,.0f}",
            f"raw requests+json loop {raw_rate:,.0f}",
            f"{tap_rate / raw_rate:.2f} x raw (target >= 0.5)",
        )
    ]


def full_and_incremental(folder: Path, contacts: int) -> tuple[list[Row], float]:
    """Full sync and a no-change incremental sync, unthrottled: requests, records, RSS."""
    with sandbox_process(
        folder / "creds.json", "--contacts", str(contacts), "--no-rate-limit"
    ) as credentials:
        full = run_tap(folder, tap_config(credentials, **UNTHROTTLED))
        full_requests = stats(credentials)["api_requests"]
        again = run_tap(folder, tap_config(credentials, **UNTHROTTLED), state=full["state"])
        incremental_requests = stats(credentials)["api_requests"] - full_requests
    naive = naive_requests(contacts)
    rows = [
        (
            f"full sync, {contacts:,} contacts, all streams",
            f"{full_requests:,} requests, {full['records']:,} records in {full['seconds']:.1f} s",
            f"naive {naive:,} requests",
            f"{full_requests / naive:.2f} x naive (target <= 0.4)",
        ),
        (
            f"no-change incremental, {contacts:,} contacts",
            f"{incremental_requests} requests, {again['records']} records",
            f"naive {naive:,} requests",
            "target <= 5 requests",
        ),
    ]
    return rows, full["peak_rss_mib"]


def paced(folder: Path, latency_ms: int) -> list[Row]:
    """At GHL's 100 requests per 10 s with network latency: wall time next to the ideal."""
    options = [
        "--contacts",
        str(PACED_CONTACTS),
        "--latency-ms",
        str(latency_ms),
        "--burst",
        "100",
        "--interval-ms",
        "10000",
    ]
    with sandbox_process(folder / "creds.json", *options) as credentials:
        result = run_tap(folder, tap_config(credentials, page_size=100))
        counters = stats(credentials)
    made = counters["api_requests"]
    ideal = made / 10  # requests / (100 per 10 s)
    return [
        (
            f"paced, {PACED_CONTACTS} contacts, {latency_ms} ms latency",
            f"{result['seconds']:.1f} s for {made} requests, {counters['rate_limited']} x 429",
            f"ideal {ideal:.1f} s",
            f"{result['seconds'] / ideal:.2f} x ideal (target <= 1.1; no 429)",
        )
    ]


def main() -> None:
    """Run every row and print the table."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        rows += throughput(folder)
        small_rows, small_rss = full_and_incremental(folder, SMALL)
        large_rows, large_rss = full_and_incremental(folder, LARGE)
        rows += small_rows + large_rows
        rows.append(
            (
                "peak RSS of the tap, full sync",
                f"{SMALL:,}: {small_rss:.0f} MiB; {LARGE:,}: {large_rss:.0f} MiB",
                "",
                f"{large_rss / small_rss:.2f} x (target <= 1.2)",
            )
        )
        rows += paced(folder, 120)
        rows += paced(folder, 250)
    header = ("benchmark", "tap-ghl-contacts", "baseline", "ratio")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    table = "\n".join(lines)
    print(table)
    (REPO / "benchmarks" / "results.md").write_text(
        f"Measured {time.strftime('%Y-%m-%d')} on this repository's machine ({os.cpu_count()} cores); "
        f"`make bench` reproduces it.\n\n{table}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
