"""The Dispatcher against the real simulated broker: nothing is sent before it is durable,
and a submit whose outcome is unknown is never re-sent blindly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from ordergate.brokers.sim import SimBroker, SimConfig, SimFaults, SubmitOutcome
from ordergate.model.events import DependencyStatus, Dispatch, OrderReject
from ordergate.model.intent import OrderType, Side
from ordergate.model.values import utc
from ordergate.runtime.dispatch import Dispatcher, NotDurable

TS = utc(2026, 3, 2, 15, 0)


def _order(cid: str = "og-1") -> Dispatch:
    return Dispatch(ts=TS, client_order_id=cid, intent_id="i-1", account="A", strategy="s",
                    symbol="AAPL", side=Side.BUY, qty=Decimal(10), order_type=OrderType.LIMIT,
                    limit_price=Decimal("100.00"))


def test_nothing_is_sent_before_its_record_is_durable() -> None:
    broker = SimBroker(SimConfig())
    dispatcher = Dispatcher(broker, lambda: 4)
    with pytest.raises(NotDurable, match="record 5"):
        dispatcher.submit(_order(), 5)
    assert broker.submissions() == []
    dispatcher.submit(_order(), 4)
    assert broker.submissions() == ["og-1"]


def test_lost_answer_of_an_accepted_order_is_not_resent() -> None:
    broker = SimBroker(SimConfig())
    broker.faults = SimFaults(fail_next_submits=1, accept_before_failing=True)
    outcome = Dispatcher(broker, lambda: 10).submit(_order(), 1)
    assert not outcome.unresolved
    assert broker.submissions() == ["og-1"]  # asked by client order id, not sent again
    assert any(isinstance(e, DependencyStatus) and not e.healthy for e in outcome.events)


def test_timeout_before_the_broker_saw_the_order_is_sent_once_more() -> None:
    broker = SimBroker(SimConfig())
    broker.faults = SimFaults(fail_next_submits=1)
    outcome = Dispatcher(broker, lambda: 10).submit(_order(), 1)
    assert not outcome.unresolved
    log = broker.submission_log()
    assert [a.outcome for a in log] == [SubmitOutcome.FAULT, SubmitOutcome.ACCEPTED]
    assert broker.get_order("og-1") is not None


def test_unanswerable_question_leaves_the_order_unresolved() -> None:
    broker = SimBroker(SimConfig())
    broker.faults = SimFaults(fail_next_submits=1, fail_next_reads=5)
    dispatcher = Dispatcher(broker, lambda: 10)
    outcome = dispatcher.submit(_order(), 1)
    assert outcome.unresolved
    assert [a.outcome for a in broker.submission_log()] == [SubmitOutcome.FAULT]
    broker.faults = SimFaults()
    later = dispatcher.resolve(_order(), 1)
    assert not later.unresolved
    assert [a.outcome for a in broker.submission_log()] == [SubmitOutcome.FAULT,
                                                            SubmitOutcome.ACCEPTED]


def test_an_order_type_the_venue_lacks_is_rejected_as_ord_002() -> None:
    market = msgspec.structs.replace(_order(), order_type=OrderType.MARKET, limit_price=None)
    broker = SimBroker(SimConfig(sync_rejects=True, order_types=frozenset({OrderType.LIMIT})))
    outcome = Dispatcher(broker, lambda: 10).submit(market, 1)
    (reject,) = [e for e in outcome.events if isinstance(e, OrderReject)]
    assert reject.code == "ORD-002" and "is not supported" in reject.reason
    # answered later, as a venue's asynchronous reject: the same code
    later = SimBroker(SimConfig(order_types=frozenset({OrderType.LIMIT})))
    assert Dispatcher(later, lambda: 10).submit(market, 1).events == []
    (async_reject,) = [e for e in later.poll_events(TS + timedelta(seconds=1))
                       if isinstance(e, OrderReject)]
    assert async_reject.code == "ORD-002"
    # any other refusal names no rule
    other = SimBroker(SimConfig(sync_rejects=True, reject_symbols=frozenset({"AAPL"})))
    (plain,) = [e for e in Dispatcher(other, lambda: 10).submit(_order(), 1).events
                if isinstance(e, OrderReject)]
    assert plain.code == "broker"


def test_broker_rejection_comes_back_as_an_order_reject() -> None:
    broker = SimBroker(SimConfig(sync_rejects=True, reject_symbols=frozenset({"AAPL"})))
    outcome = Dispatcher(broker, lambda: 10).submit(_order(), 1)
    rejects = [e for e in outcome.events if isinstance(e, OrderReject)]
    assert len(rejects) == 1 and rejects[0].client_order_id == "og-1"
