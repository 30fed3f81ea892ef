"""The decision index keeps records encoded, beside the fields the decisions API filters on,
so that hundreds of thousands of them cost the garbage collector nothing. These tests prove
that keeping them so loses nothing: every record reads back byte for byte as it went in, and
the filter fields say what the record says."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import ShadowDecision
from ordergate.model.intent import OrderIntent, OrderType, Side, TimeInForce
from ordergate.model.modes import Mode
from ordergate.service.bridge import DecisionIndex, DecisionRecord, IndexEntry, shadow_differs

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

_ids = st.text(alphabet="abcXYZ019-_.:", min_size=1, max_size=12)
_codes = st.sampled_from(["EXP-001", "ORD-006", "THR-002", "LOSS-001", "MODE-001"])
# at most 28 significant digits, as the model accepts
_decimals = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e9"), places=None,
                        allow_nan=False, allow_infinity=False).filter(
    lambda d: d > 0 and len(d.as_tuple().digits) <= 28)
_times = st.integers(0, 10**12).map(lambda us: T0 + timedelta(microseconds=us))
_violations = st.lists(st.builds(Violation, code=_codes, observed=st.text(max_size=8),
                                 limit=st.text(max_size=8), detail=st.text(max_size=20)),
                       max_size=3).map(tuple)


# tag text as intents arrive with it: no control characters, and no lone surrogates (naming
# the categories replaces hypothesis's default, which leaves surrogates out; JSON input cannot
# carry one, and UTF-8 cannot encode one)
TAG_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=5)


@st.composite
def records(draw: st.DrawFn) -> DecisionRecord:
    intent_id = draw(_ids)
    order_type = draw(st.sampled_from(OrderType))
    intent = OrderIntent(
        intent_id=intent_id, ts=draw(_times), account=draw(_ids), strategy=draw(_ids),
        symbol=draw(_ids), side=draw(st.sampled_from(Side)), qty=draw(_decimals),
        order_type=order_type, limit_price=draw(st.none() | _decimals),
        stop_price=draw(st.none() | _decimals), tif=draw(st.sampled_from(TimeInForce)),
        reduce_only=draw(st.booleans()), client_order_id=draw(st.none() | _ids),
        tags=draw(st.dictionaries(TAG_TEXT, TAG_TEXT, max_size=2)))
    violations = draw(_violations)
    kind = draw(st.sampled_from(DecisionKind))
    decision = Decision(
        intent_id=intent_id, decision=kind,
        blocking=violations[0].code if violations and kind is not DecisionKind.ALLOW else "",
        violations=violations,
        modified_qty=draw(_decimals) if kind is DecisionKind.MODIFY else None,
        mode=draw(st.sampled_from(Mode)), risk_reducing=draw(st.booleans()),
        monitor=draw(st.booleans()), would_block=draw(st.sampled_from(["", "EXP-001"])),
        policy_hash=draw(st.sampled_from(["", "sha256:ab"])))
    shadow = None
    if draw(st.booleans()):
        shadow_violations = draw(_violations)
        shadow = ShadowDecision(
            ts=intent.ts, intent_id=intent_id, policy_hash="sha256:cd",
            decision=draw(st.sampled_from(DecisionKind)),
            blocking=shadow_violations[0].code if shadow_violations else "",
            violations=shadow_violations, modified_qty=draw(st.none() | _decimals))
    # the deciding run, kept beside the encoded record ("": not known)
    run_id = draw(st.sampled_from(["", "2af947f0b4e6414494f8779c65c37ed0"]))
    return DecisionRecord(intent=intent, decision=decision, shadow=shadow, run_id=run_id)


@settings(max_examples=300, deadline=None)
@given(records())
def test_an_indexed_record_reads_back_byte_for_byte_with_its_filter_fields(
        record: DecisionRecord) -> None:
    entry = IndexEntry.of(record)
    assert msgspec.json.encode(entry.record()) == msgspec.json.encode(record)
    assert entry.record() == record
    intent, decision = record.intent, record.decision
    assert (entry.ts, entry.symbol, entry.account) == (intent.ts, intent.symbol, intent.account)
    assert entry.decision == decision.decision.value and entry.monitor is decision.monitor
    assert entry.blocking == decision.blocking
    assert entry.codes == tuple(violation.code for violation in decision.violations)
    assert entry.run_id == record.run_id
    expected = None if record.shadow is None else shadow_differs(record)
    assert entry.shadow_differs is expected


@settings(max_examples=50, deadline=None)
@given(st.lists(records(), min_size=1, max_size=6))
def test_the_index_answers_by_id_and_pages_newest_first(batch: list[DecisionRecord]) -> None:
    index = DecisionIndex()
    index.add(batch)
    first: dict[str, DecisionRecord] = {}
    for record in batch:
        first.setdefault(record.intent.intent_id, record)  # a repeated id keeps its first
    assert len(index) == len(first)
    for intent_id, record in first.items():
        assert intent_id in index and index.get(intent_id) == record
    paged = [entry.record() for _, entry in index.newest_first()]
    assert paged == list(reversed(first.values()))


def test_indexed_entries_are_invisible_to_the_garbage_collector() -> None:
    intent = OrderIntent(intent_id="i-1", ts=T0, account="ACC-1", strategy="s", symbol="AAPL",
                         side=Side.BUY, qty=Decimal("10"))
    decision = Decision(intent_id="i-1", decision=DecisionKind.DENY, blocking="ORD-006",
                        violations=(Violation(code="ORD-006", observed="10", limit="5"),))
    entry = IndexEntry.of(DecisionRecord(intent=intent, decision=decision))
    gc.collect()  # untracks the tuple of codes, as it untracks every tuple of strings
    assert not any(gc.is_tracked(value) for value in (entry, entry.encoded, entry.codes))
