"""The engine thread never leaves a caller hanging: if it dies of an error that escapes every
guard (here a batch listener raising a BaseException, as a SystemExit or a MemoryError from
deep inside would), the request in flight and every later one are answered 503 and the
service reports itself not live."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from ordergate.model.events import InputEvent
from ordergate.service.bridge import Emitted
from service.support import OPERATOR, TRADER, Served, auth, intent


class EngineCrash(BaseException):
    """Not an Exception: no guard in the bridge is meant to catch it."""


def crash(inputs: Sequence[InputEvent], emitted: Sequence[Emitted]) -> None:
    raise EngineCrash("listener blew up")


def test_a_dead_engine_thread_answers_503_instead_of_hanging(
        served: Served, client: httpx.Client) -> None:
    served.gateway.bridge.add_listener(crash)
    response = client.post("/v1/mode/halt", json={"reason": "drill"}, headers=auth(OPERATOR))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert "engine stopped" in response.json()["detail"]
    assert "EngineCrash" not in response.text and "blew up" not in response.text  # in the log
    later = client.post("/v1/intents", json=intent("later", seconds=2), headers=auth(TRADER))
    assert later.status_code == 503 and "not running" in later.json()["detail"]
    assert not served.gateway.bridge.running
    health = client.get("/v1/health")
    assert health.status_code == 503 and health.json()["live"] is False
    assert served.broker.submissions() == []
