"""GET /metrics says what its help texts and docs/metrics.md say: the evaluation histogram is
the engine's own time per intent, the exposure caps are the ones the enforced policy sets, and
every metric the gateway registers is documented with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ordergate.evidence.decisions import iter_decisions
from ordergate.service.metrics import ServiceMetrics
from service.support import OPERATOR, POLICY, TRADER, VIEWER, Served, auth, intent

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=auth(VIEWER))
    assert response.status_code == 200, response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def test_evaluation_seconds_is_the_engines_own_time_per_intent(
        served: Served, client: httpx.Client) -> None:
    batch = {"intents": [intent(f"eval-{number}", qty="3") for number in range(3)]}
    answer = client.post("/v1/intents", json=batch, headers=auth(TRADER))
    assert answer.status_code == 200, answer.text
    served.sent()  # the engine thread has finished the batch (and the broker's answers)

    samples = _samples(client)
    # The runtime journals the engine's time on each intent; the histogram holds just those
    # (not the batch's journal writes, flushes and broker calls spread over its intents).
    journaled = [row.latency_ns for row in iter_decisions(served.gateway.runtime.journal)]
    assert len(journaled) == 3 and None not in journaled
    assert samples[("ordergate_evaluation_seconds_count", ())] == 3
    engine_s = sum(ns for ns in journaled if ns is not None) / 1e9
    assert samples[("ordergate_evaluation_seconds_sum", ())] == pytest.approx(engine_s)
    assert samples[("ordergate_batch_seconds_count", ())] >= 1


def test_an_exposure_cap_the_enforced_policy_drops_leaves_the_metrics(
        client: httpx.Client) -> None:
    assert client.post("/v1/intents", json=intent("cap-1"),
                       headers=auth(TRADER)).status_code == 200
    net = ("ordergate_exposure_cap", (("account", "ACC-1"), ("kind", "net")))
    gross = ("ordergate_exposure_cap", (("account", "ACC-1"), ("kind", "gross")))
    before = _samples(client)
    assert before[net] == 500000 and before[gross] == 1000000

    uncapped = POLICY.replace("service-test", "service-no-net").replace(
        "  max_net_exposure: 500000\n", "")
    assert uncapped != POLICY
    activated = client.post("/v1/policy", json={"document": uncapped, "reason": "uncap"},
                            headers=auth(OPERATOR))
    assert activated.status_code == 200, activated.text
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    [account] = [row for row in status["exposure"] if row["account"] == "ACC-1"]
    assert account["net_cap"] is None

    after = _samples(client)
    assert net not in after  # no longer a cap: no sample, rather than the old 500000
    assert after[gross] == 1000000
    assert ("ordergate_exposure", (("account", "ACC-1"), ("kind", "net"))) in after


def _documented() -> dict[str, str]:
    """Metric name -> its row in docs/metrics.md's table."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`(ordergate_[a-z_]+)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_registered_metric_is_documented_with_its_type_and_labels() -> None:
    registered = {}
    for family in ServiceMetrics().registry.collect():
        # A counter is scraped as <name>_total; histograms as <name>_bucket, _sum, _count.
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        registered[name] = (family.type, labels)
    # Labelled children appear in samples only once used: take the declared label names too.
    for metric in vars(ServiceMetrics()).values():
        names = getattr(metric, "_labelnames", None)
        if names:
            registered_name = metric._name + ("_total" if metric._type == "counter" else "")
            registered[registered_name][1].update(names)

    documented = _documented()
    assert set(documented) == set(registered), (
        f"docs/metrics.md lists {sorted(set(documented) - set(registered))} that are not "
        f"registered and misses {sorted(set(registered) - set(documented))}")
    for name, (kind, labels) in registered.items():
        cells = [cell.strip() for cell in documented[name].strip("|").split("|")]
        assert cells[1] == kind, (name, cells[1])
        listed = set(re.findall(r"`([a-z_]+)`", cells[2]))
        assert labels <= listed, (name, labels - listed)
