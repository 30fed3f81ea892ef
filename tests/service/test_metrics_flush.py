"""GET /metrics reports journal fsync latency: every durable write of a batch on the
gateway's path is timed into `ordergate_journal_flush_seconds`."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.support import TRADER, VIEWER, Served, auth, intent


def _flush_histogram(client: httpx.Client) -> tuple[float, float]:
    """(count, sum) of ordergate_journal_flush_seconds as scraped."""
    response = client.get("/metrics", headers=auth(VIEWER))
    assert response.status_code == 200, response.text
    samples = {sample.name: sample.value
               for family in text_string_to_metric_families(response.text)
               if family.name == "ordergate_journal_flush_seconds"
               for sample in family.samples}
    return samples["ordergate_journal_flush_seconds_count"], \
        samples["ordergate_journal_flush_seconds_sum"]


def test_journal_flush_latency_is_observed_for_every_durable_batch(
        served: Served, client: httpx.Client) -> None:
    count_before, _ = _flush_histogram(client)

    for number in range(3):
        answer = client.post("/v1/intents", json=intent(f"flush-{number}", seconds=1 + number),
                             headers=auth(TRADER))
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"]["decision"] == "ALLOW"
    served.sent()  # the engine thread has finished the batches in hand (broker answers too)

    count, total = _flush_histogram(client)
    # Each intent is one durable batch, and each order's broker answers one more.
    assert count - count_before >= 3
    assert total > 0
