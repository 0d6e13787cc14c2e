"""End to end: sandbox -> tap-ghl-contacts -> target-duckdb through real Meltano, then DuckDB.

This is the test that catches a loader dropping rows (target-duckdb does with duckdb >= 1.3).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import TYPE_CHECKING, Any

import pytest

from scripts.pipeline import STREAMS, PipelinePaths, run_pipeline, table, warehouse
from tap_ghl_contacts.sandbox import Account, RateLimits, SandboxAPI, SandboxServer
from tap_ghl_contacts.timestamps import normalize_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


# A higher limit than GHL's default (GHL sets limits per app): paced by the headers, yet quick.
BURST = 20_000


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[SandboxAPI, str]]:
    api = SandboxAPI(Account.seeded(600, seed=21), rate_limits=RateLimits(burst=BURST))
    with SandboxServer(api) as server:
        yield api, server.url


def credentials(api: SandboxAPI, url: str, refresh_token: str) -> dict[str, Any]:
    return {
        "api_url": url,
        "location_id": api.location_id,
        "client_id": api.credentials.client_id,
        "client_secret": api.credentials.client_secret,
        "refresh_token": refresh_token,
    }


def ids(paths: PipelinePaths, stream: str) -> list[str]:
    with warehouse(paths) as con:
        return [row[0] for row in con.sql(f"select id from {table(stream)}").fetchall()]  # noqa: S608


def assert_values_match(paths: PipelinePaths, api: SandboxAPI) -> None:
    sample = random.Random(5).sample(sorted(api.account.contacts), 40)
    with warehouse(paths) as con:
        loaded = {
            row[0]: row[1:]
            for row in con.execute(
                f"select id, email, phone, tags, customfields, dateupdated from {table('contacts')} "  # noqa: S608
                f"where id in ({', '.join('?' * len(sample))})",
                sample,
            ).fetchall()
        }
        for contact_id in sample:
            source = api.account.contacts[contact_id]
            email, phone, tags, custom, updated = loaded[contact_id]
            assert (email, phone) == (source["email"], source["phone"])
            assert json.loads(tags) == source["tags"]
            assert json.loads(custom) == source["customFields"]
            assert updated.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "") + "Z" == (
                normalize_timestamp(source["dateUpdated"]) or ""
            ).replace(".000000Z", "Z")
        appointment = next(a for rows in api.account.appointments.values() for a in rows)
        query = f"select starttime from {table('appointments')} where id = ?"  # noqa: S608
        start = con.execute(query, [appointment["id"]]).fetchone()
        assert start is not None
        assert start[0] == dt.datetime.fromisoformat(appointment["startTime"])  # zone-less, read as UTC


def test_meltano_pipeline_loads_exactly_the_sandbox_truth_then_only_changes(
    sandbox: tuple[SandboxAPI, str], tmp_path: Path
) -> None:
    api, url = sandbox
    paths = PipelinePaths(tmp_path)
    config = credentials(api, url, api.issue_refresh_token())

    run_pipeline(paths, config, max_requests_per_interval=str(BURST))
    truth = api.account.truth()
    for stream in STREAMS:
        loaded = ids(paths, stream)
        assert len(loaded) == len(truth[stream]), stream  # no row dropped or doubled
        assert sorted(loaded) == truth[stream], stream
    assert_values_match(paths, api)
    assert api.token_grants == 1

    changes = api.mutate(random.Random(9), dt.datetime.now(dt.UTC), scale=0.05)
    searches_before = len(api.api_calls("/contacts/search"))
    api.revoke_access_tokens()  # a day later: GHL no longer accepts the stored access token
    run_pipeline(paths, config, max_requests_per_interval=str(BURST))  # config: first, spent token
    after = api.account.truth()
    for stream in STREAMS:
        loaded = ids(paths, stream)
        assert len(loaded) == len(set(loaded)), stream  # upserted, not duplicated
        assert set(after[stream]) <= set(loaded), stream
    deleted = set(changes["deleted"])
    assert set(ids(paths, "contacts")) == set(after["contacts"]) | deleted  # deletes are not detected
    assert_values_match(paths, api)
    searches = api.api_calls("/contacts/search")[searches_before:]
    assert [r["status"] for r in searches if r["status"] == 200] == [200]  # one page of changes
    assert api.token_grants == 2  # refreshed once, with the rotated token from the store
    statuses = [r["status"] for r in api.requests]
    assert statuses.count(401) == 1  # the revoked token, answered by one refresh and one retry
    assert set(statuses) == {200, 401}
