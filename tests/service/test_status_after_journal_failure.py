"""Once the gateway stopped on a journal write that failed, what it shows is not taken for what
is durable. The engine's figures then hold what the failed batch did in memory (the order it
reserved in exposure, the rate window it counted) though no journal holds it: the status says
so in its headline beside `stopped`, the metrics drop the exposure and throttle samples rather
than export them, and the journal's last record shown (and the lag) is the last one written,
never one of the records that failed. Clients of the failed request are told so in plain words,
without the server's journal path, record numbers or internal class names."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.service.bridge import JOURNAL_STOPPED_WORDS
from service.support import OPERATOR, TRADER, VIEWER, Served, auth, intent, start
from service.test_journal_failure_answers import _refuse_writes


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[Served, httpx.Client]]:
    served = start(tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            yield served, client
    finally:
        served.stop()


def _written_seq(journal_url: str) -> int:
    """The newest record the SQLite journal holds, read from the file."""
    path = journal_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT max(seq) FROM journal_records").fetchone()
    return int(row[0])


def _samples(metrics: str, name: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith(name + "{")
            or line.startswith(name + " ")]


def _gross(status: dict[str, Any], account: str = "ACC-1") -> str:
    return str(next(row["gross"] for row in status["exposure"] if row["account"] == account))


def test_status_after_a_failed_write_shows_the_durable_head_and_says_the_figures_may_not_be(
        stopped: tuple[Served, httpx.Client]) -> None:
    served, client = stopped
    ok = client.post("/v1/intents", json=intent("before", qty="10"), headers=auth(TRADER))
    assert ok.status_code == 200, ok.text
    before = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert _samples(client.get("/metrics", headers=auth(VIEWER)).text, "ordergate_exposure")
    durable = _written_seq(served.journal_url)
    assert before["journal"]["last_seq"] == durable

    _refuse_writes(served.journal_url)
    failed = client.post("/v1/intents", json=intent("during", qty="77", seconds=1.5),
                         headers=auth(TRADER))
    assert failed.status_code == 503, failed.text

    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["stopped"], status
    # The engine still counts the failed order (10 + 77 shares at 100): the figures are the
    # engine's at the failure, and the headline says they may include what was never stored.
    assert (_gross(before), _gross(status)) == ("1000.000", "8700.000")
    headline = status["headline"]
    assert headline.startswith("STOPPED: "), headline
    assert ("The positions, exposure and rate windows shown are the engine's at the failure "
            "and may include work that was never stored: a restart rebuilds them from what "
            f"the journal holds (through record {durable}).") in headline, headline
    # The journal's last record is the last one written, not the records that failed.
    assert _written_seq(served.journal_url) == durable
    journal = status["journal"]
    assert journal["last_seq"] == durable, journal
    assert journal["lag"] == durable - journal["snapshot_seq"], journal

    metrics = client.get("/metrics", headers=auth(VIEWER)).text
    assert _samples(metrics, "ordergate_exposure") == [], metrics
    assert _samples(metrics, "ordergate_throttle_utilisation") == [], metrics
    assert f"ordergate_journal_lag_records {float(journal['lag'])}" in metrics


def test_the_answers_after_a_failed_write_name_no_server_file_record_or_class(
        stopped: tuple[Served, httpx.Client]) -> None:
    served, client = stopped
    assert client.post("/v1/intents", json=intent("before"), headers=auth(TRADER)).status_code \
        == 200
    _refuse_writes(served.journal_url)
    path = served.journal_url.removeprefix("sqlite:///")

    failed = client.post("/v1/intents", json=intent("during", seconds=1.5), headers=auth(TRADER))
    later = client.post("/v1/intents", json=intent("later", seconds=2), headers=auth(TRADER))
    halt = client.post("/v1/mode/halt", json={"reason": "disk"}, headers=auth(OPERATOR))

    for answer in (failed, later):
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "unavailable",
                                 "detail": f"not durable, nothing was done: "
                                           f"{JOURNAL_STOPPED_WORDS}"}, answer.text
    assert halt.status_code == 503, halt.text
    assert halt.json() == {"error": "unavailable", "detail": JOURNAL_STOPPED_WORDS}
    for answer in (failed, later, halt):
        text = answer.text
        assert "RuntimeStopped" not in text and path not in text, text
        assert "journal write of records" not in text, text
    assert "journal could not be written" in JOURNAL_STOPPED_WORDS
