"""Builders for engine tests: a funded account, a quoted symbol, an active policy, and a
driver that stamps events with an advancing event time."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from ordergate.engine.core import Engine
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import (
    AccountFunding,
    CancelRequest,
    ClockTick,
    Command,
    CommandAction,
    DependencyStatus,
    Dispatch,
    EngineUpgrade,
    Fill,
    InputEvent,
    OrderAck,
    OrderCanceled,
    OrderReject,
    OutputEvent,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy import Policy

D = Decimal
T0 = utc(2026, 1, 5, 14, 0, 0)
Out = TypeVar("Out")


def policy_document(
    defaults: dict[str, Any] | None = None, engine: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "ordergate/v1", "kind": "Policy", "metadata": {"name": "test"},
        "defaults": {"max_market_data_age": "1m", **(defaults or {})},
    }
    if engine is not None:
        document["engine"] = engine
    document.update(sections)
    return document


def of_type(outputs: list[OutputEvent], kind: type[Out]) -> list[Out]:
    return [output for output in outputs if isinstance(output, kind)]


def decision_of(outputs: list[OutputEvent]) -> Decision:
    decisions = of_type(outputs, Decision)
    assert len(decisions) == 1, outputs
    return decisions[0]


def encode(outputs: list[OutputEvent]) -> bytes:
    return b"\n".join(msgspec.json.encode(output) for output in outputs)


class Harness:
    """An engine with one active policy, funded accounts and quoted symbols at T0, running
    the current behaviour (`ENGINE_BEHAVIOUR`, journaled first as a new journal has it) or the
    older `behaviour` given."""

    def __init__(
        self, defaults: dict[str, Any] | None = None, engine: dict[str, Any] | None = None,
        *, accounts: tuple[str, ...] = ("A",), cash: str = "100000",
        symbols: tuple[str, ...] = ("X",), price: str = "100",
        behaviour: int = ENGINE_BEHAVIOUR, **sections: Any,
    ) -> None:
        self.engine = Engine()
        self.now = T0
        self.seq = 0
        self.log: list[InputEvent] = []
        self.outputs: list[list[OutputEvent]] = []
        if behaviour > 1:
            self.send(EngineUpgrade(ts=self.now, behaviour=behaviour))
        document = policy_document(defaults, engine, **sections)
        self.policy = Policy.from_document(document)
        self.send(PolicyDocument(ts=self.now, policy_hash=self.policy.hash,
                                 document=self.policy.document))
        self.send(Command(ts=self.now, action=CommandAction.ACTIVATE_POLICY,
                          policy_hash=self.policy.hash))
        for account in accounts:
            self.send(AccountFunding(ts=self.now, account=account, cash=D(cash)))
        for symbol in symbols:
            self.quote(symbol, price)

    @property
    def state(self) -> Any:
        return self.engine.state

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def send(self, event: InputEvent) -> list[OutputEvent]:
        self.log.append(event)
        outputs = self.engine.handle(event)
        self.outputs.append(outputs)
        return outputs

    def quote(self, symbol: str = "X", price: str = "100", spread: str = "0.02",
              **fields: Any) -> list[OutputEvent]:
        mid, half = D(price), D(spread) / 2
        values: dict[str, Any] = {"bid": mid - half, "ask": mid + half, "last": mid}
        values.update(fields)
        return self.send(MarketSnapshot(ts=self.now, symbol=symbol, **values))

    def intent(self, side: Side = Side.BUY, qty: str = "10", **fields: Any) -> list[OutputEvent]:
        self.seq += 1
        values: dict[str, Any] = {
            "intent_id": f"i{self.seq}", "ts": self.now, "account": "A", "strategy": "s1",
            "symbol": "X", "side": side, "qty": D(qty),
        }
        if "limit_price" in fields:
            values["order_type"] = OrderType.LIMIT
            fields["limit_price"] = D(fields["limit_price"])
        values.update(fields)
        return self.send(OrderIntent(**values))

    def accepted(self, side: Side = Side.BUY, qty: str = "10", **fields: Any) -> Dispatch:
        """Send an intent that must be allowed; return its dispatch."""
        outputs = self.intent(side, qty, **fields)
        decision = decision_of(outputs)
        assert decision.decision is not DecisionKind.DENY, decision
        (dispatch,) = of_type(outputs, Dispatch)
        return dispatch

    def fill(self, client_order_id: str, qty: str, price: str = "100", fee: str = "0",
             fill_id: str | None = None) -> list[OutputEvent]:
        self.seq += 1
        return self.send(Fill(ts=self.now, client_order_id=client_order_id,
                              fill_id=fill_id or f"f{self.seq}", qty=D(qty), price=D(price),
                              fee=D(fee)))

    def ack(self, client_order_id: str) -> list[OutputEvent]:
        return self.send(OrderAck(ts=self.now, client_order_id=client_order_id,
                                  broker_order_id=f"b-{client_order_id}"))

    def reject(self, client_order_id: str) -> list[OutputEvent]:
        return self.send(OrderReject(ts=self.now, client_order_id=client_order_id,
                                     reason="insufficient buying power"))

    def canceled(self, client_order_id: str) -> list[OutputEvent]:
        return self.send(OrderCanceled(ts=self.now, client_order_id=client_order_id))

    def cancel_request(self, client_order_id: str, account: str = "A") -> list[OutputEvent]:
        return self.send(CancelRequest(ts=self.now, client_order_id=client_order_id,
                                       account=account, requested_by="s1"))

    def command(self, action: CommandAction, **fields: Any) -> list[OutputEvent]:
        return self.send(Command(ts=self.now, action=action, **fields))

    def tick(self, seconds: float = 0) -> list[OutputEvent]:
        self.advance(seconds)
        return self.send(ClockTick(ts=self.now))

    def dependency(self, name: str, healthy: bool, code: str = "") -> list[OutputEvent]:
        return self.send(DependencyStatus(ts=self.now, dependency=name, healthy=healthy,
                                          code=code))

    def fund(self, account: str, cash: str) -> list[OutputEvent]:
        return self.send(AccountFunding(ts=self.now, account=account, cash=D(cash)))

    def book_image(self) -> bytes:
        """Positions, reservations, open orders and exposure: what a DENY must not touch."""
        state = self.engine.state
        return msgspec.json.encode([
            list(state.books.values()), list(state.open_orders.values()),
            list(state.accounts.values()),
            [(key, ladder.buys, ladder.sells) for key, ladder in sorted(state.ladders.items())],
            [(entry.kind, entry.key, entry.times) for entry in state.windows.image().series],
            state.duplicates.image().entries,
        ])

