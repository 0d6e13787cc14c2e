"""``make demo``: a local GHL sandbox -> tap-ghl-contacts -> target-duckdb, through Meltano.

The first run is a full sync. Every later run first lets the sandbox's "users" edit
some contacts, add notes and tasks and delete a contact, then syncs incrementally from
the state Meltano kept, and shows that only what changed moved. No GHL account and no
network beyond PyPI are needed. ``DEMO_CONTACTS`` sets the sandbox size (default 2000);
``rm -rf .demo`` starts over.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.pipeline import REPO, STREAMS, PipelinePaths, run_pipeline, sandbox_process, table, warehouse

DEMO = REPO / ".demo"
DEMO_BURST = 20_000

EXAMPLES = {
    "One contact with its tasks, notes and appointments": """
        with busiest as (
            select c.id from ghl.contacts c
            join ghl.notes n on n.contactid = c.id
            join ghl.tasks t on t.contactid = c.id
            join ghl.appointments a on a.contactid = c.id
            group by c.id order by count(*) asc, c.id limit 1
        )
        select 'contact' as kind, c.id, coalesce(c.email, '(no email)') as what, c.dateupdated as at
            from ghl.contacts c join busiest using (id)
        union all select 'task', t.id, t.title, t.duedate
            from ghl.tasks t join busiest b on t.contactid = b.id
        union all select 'note', n.id, n.body, n.dateadded
            from ghl.notes n join busiest b on n.contactid = b.id
        union all select 'appointment', a.id, a.appointmentstatus, a.starttime
            from ghl.appointments a join busiest b on a.contactid = b.id
        order by kind, at
    """,
    "Contacts missing an email or a phone": """
        select
            count(*) filter (where email is null) as no_email,
            count(*) filter (where phone is null) as no_phone,
            count(*) filter (where email is null and phone is null) as unreachable,
            count(*) as contacts
        from ghl.contacts
    """,
    "Custom field values, loosely typed as GHL sends them": """
        select cf.value ->> 'id' as field, json_type(cf.value -> 'value') as type, count(*) as contacts
        from ghl.contacts, unnest(cast(customfields as json[])) as cf(value)
        group by all order by field, type
    """,
}


def show(title: str, rows: list[tuple[Any, ...]], columns: list[str]) -> None:
    """Print a small table."""
    print(f"\n{title}")
    cells = [columns, *[[("" if v is None else str(v))[:48] for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for number, row in enumerate(cells):
        print("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  " + "  ".join("-" * width for width in widths))


def report(
    paths: PipelinePaths, credentials: dict[str, Any], truth: dict[str, list[str]], started: float
) -> None:
    """What landed, what this run moved, and a few example queries."""
    since = dt.datetime.fromtimestamp(started, tz=dt.UTC).replace(tzinfo=None)
    with warehouse(paths) as con:
        rows = []
        for stream in STREAMS:
            total, moved = con.execute(
                f"select count(*), count(*) filter (where _sdc_batched_at >= ?) from {table(stream)}",  # noqa: S608
                [since],
            ).fetchone() or (0, 0)
            rows.append((stream, total, len(truth[stream]), moved))
        show("Rows per table", rows, ["table", "in DuckDB", "in GHL sandbox", "moved by this run"])
        for title, sql in EXAMPLES.items():
            result = con.sql(textwrap.dedent(sql))
            show(title, result.fetchall(), list(result.columns))
    changes = credentials.get("changes") or {}
    if changes:
        print(
            "\nBefore this run the sandbox's users updated {updated} contacts, added {added} contacts, "
            "{notes_added} notes and {tasks_added} tasks, and deleted {deleted} contact(s).".format(**changes)
        )
        print(
            "'Moved' also counts contacts re-read inside the 5-minute lookback window before the "
            "bookmark (at-least-once; the target upserts them). DuckDB keeps deleted contacts "
            "(the tap does not detect deletes yet), so it can hold more rows than the sandbox."
        )
    print(f"\nDuckDB file: {paths.warehouse}   Meltano log: {paths.log}")
    print("Run `make demo` again for an incremental run; `rm -rf .demo` to start over.")


def main() -> None:
    """Start the sandbox, run the pipeline, report, stop the sandbox."""
    paths = PipelinePaths(DEMO)
    first = not paths.warehouse.exists()
    contacts = os.environ.get("DEMO_CONTACTS", "2000")
    kind = "Full" if first else "Incremental"
    print(f"{kind} sync of a {contacts}-contact GHL sandbox into DuckDB via Meltano ...")
    # The sandbox grants this app a higher limit than GHL's default 100 per 10 s (GHL sets
    # limits per app), so the demo takes seconds; the tap still paces by the headers.
    options = [
        "--contacts",
        contacts,
        "--burst",
        str(DEMO_BURST),
        "--mutate",
        "--state-dir",
        str(DEMO / "sandbox"),
    ]
    with sandbox_process(DEMO / "credentials.json", *options) as credentials:
        import requests  # noqa: PLC0415  (only needed while the sandbox runs)

        started = run_pipeline(paths, credentials, max_requests_per_interval=str(DEMO_BURST))
        truth = requests.get(credentials["api_url"] + "/_sandbox/truth", timeout=30).json()
        stats = requests.get(credentials["api_url"] + "/_sandbox/stats", timeout=30).json()
    print(f"Done: {stats['api_requests']} API requests, {stats['token_grants']} OAuth token grant(s).")
    report(paths, credentials, truth, started)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as exc:
        sys.exit(f"demo failed: {exc}")
