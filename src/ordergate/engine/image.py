"""Engine snapshots: the whole state as deterministic bytes, and back.

Everything whose order can influence a later output is stored in its current iteration
order (dicts are insertion-ordered), sets are stored sorted, and derived indexes (the
resting-price ladders, the index of derived client order ids) are rebuilt. So a restored
engine fed the remaining events gives byte-identical outputs to the engine that never
stopped, and `snapshot()` of the restored engine equals the snapshot it came from.

Stored policy documents travel inside the snapshot: a snapshot is usable without the
journal records that first announced its policies.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from ordergate.engine.modes import ModeGuard, ModeGuardImage
from ordergate.engine.records import AccountRecord, Book, FillSeen, OrderRecord
from ordergate.engine.retention import RetainedMap, RetainedSet
from ordergate.engine.state import DisabledStrategy, EngineTooNew, KillRecord, kill_key
from ordergate.engine.windows import (
    DuplicateWindow,
    DuplicateWindowImage,
    RateWindows,
    RateWindowsImage,
)
from ordergate.model.decision import Decision
from ordergate.model.events import FirmRateLimited, FirmState
from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.policy import Policy

if TYPE_CHECKING:
    from ordergate.engine.core import Engine

IMAGE_VERSION = 1


class SnapshotError(ValueError):
    """The bytes are not an engine snapshot this version can restore; says why."""


class PolicyImage(msgspec.Struct, frozen=True, kw_only=True):
    policy_hash: str
    document: dict[str, Any]


class DecidedImage(msgspec.Struct, frozen=True, array_like=True):
    account: str
    strategy: str
    intent_id: str
    decision: Decision


class HoldersImage(msgspec.Struct, frozen=True, array_like=True):
    symbol: str
    accounts: list[str]


class MarkImage(msgspec.Struct, frozen=True, array_like=True):
    symbol: str
    mark: Decimal


class FillContentsImage(msgspec.Struct, frozen=True, array_like=True):
    fill_id: str
    seen: list[FillSeen]


class CounterImage(msgspec.Struct, frozen=True, array_like=True):
    name: str
    value: int


class EngineImage(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    clock: datetime
    started: bool
    policies: list[PolicyImage]
    active_policy: str
    guard: ModeGuardImage
    kills: list[KillRecord]
    disabled: list[DisabledStrategy]
    markets: list[MarketSnapshot]
    marks: list[MarkImage]
    accounts: list[AccountRecord]
    books: list[Book]
    holders: list[HoldersImage]
    open_orders: list[OrderRecord]
    done_orders: list[OrderRecord]
    windows: RateWindowsImage
    duplicates: DuplicateWindowImage
    fill_ids: list[str]
    decided: list[DecidedImage]
    counters: list[CounterImage]
    next_roll_at: datetime | None
    flatten_seq: int
    limits_journaled: list[str] = []
    firm: FirmState | None = None
    firm_rate_limited: list[FirmRateLimited] = []
    shadow_policy: str = ""
    # the previous trading day's generation (engine/retention.py)
    done_orders_previous: list[OrderRecord] = []
    fill_ids_previous: list[str] = []
    decided_previous: list[DecidedImage] = []
    # the intents those decisions answered (keyed by their own account, strategy, intent_id)
    decided_intents: list[OrderIntent] = []
    decided_intents_previous: list[OrderIntent] = []
    # the behaviour epoch (`state.ENGINE_BEHAVIOUR`); a snapshot taken before epochs were
    # journaled holds none and was taken under behaviour 1
    behaviour: int = 1
    # what the fills booked under behaviour 3 on said, by fill id (`state.fill_contents`)
    fill_contents: list[FillContentsImage] = []
    fill_contents_previous: list[FillContentsImage] = []


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(EngineImage)


def encode_image(engine: Engine) -> bytes:
    state = engine.state
    image = EngineImage(
        version=IMAGE_VERSION,
        clock=state.clock,
        started=state.started,
        policies=[PolicyImage(policy_hash=key, document=policy.document)
                  for key, policy in engine.policies.items()],
        active_policy="" if engine.active is None else engine.active.hash,
        guard=state.guard.image(),
        kills=list(state.kills.values()),
        disabled=list(state.disabled.values()),
        markets=list(state.markets.values()),
        marks=[MarkImage(symbol, mark) for symbol, mark in state.marks.items()],
        accounts=list(state.accounts.values()),
        books=list(state.books.values()),
        holders=[HoldersImage(symbol, list(accounts))
                 for symbol, accounts in state.holders.items()],
        open_orders=list(state.open_orders.values()),
        done_orders=list(state.done.current.values()),
        done_orders_previous=list(state.done.previous.values()),
        windows=state.windows.image(),
        duplicates=state.duplicates.image(),
        fill_ids=sorted(state.fill_ids.current),
        fill_ids_previous=sorted(state.fill_ids.previous),
        decided=_decided_images(state.decided.current),
        decided_previous=_decided_images(state.decided.previous),
        counters=[CounterImage(name, value) for name, value in state.counters.items()],
        next_roll_at=state.next_roll_at,
        flatten_seq=state.flatten_seq,
        limits_journaled=list(state.limits_journaled),
        firm=state.firm,
        firm_rate_limited=list(state.firm_rate_limited.values()),
        shadow_policy="" if engine.shadow is None else engine.shadow.hash,
        decided_intents=list(state.decided_intents.current.values()),
        decided_intents_previous=list(state.decided_intents.previous.values()),
        behaviour=state.behaviour,
        fill_contents=_fill_contents_images(state.fill_contents.current),
        fill_contents_previous=_fill_contents_images(state.fill_contents.previous),
    )
    return _encoder.encode(image)


def apply_image(engine: Engine, data: bytes) -> None:
    """Load a snapshot into a fresh engine."""
    try:
        image = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"engine snapshot: {exc}") from exc
    if image.version != IMAGE_VERSION:
        raise SnapshotError(
            f"engine snapshot: version {image.version}, this engine reads {IMAGE_VERSION}"
        )
    for entry in image.policies:
        policy = Policy.from_document(entry.document, source="engine snapshot")
        if policy.hash != entry.policy_hash:
            raise SnapshotError(
                f"engine snapshot: policy {entry.policy_hash} re-hashes to {policy.hash}"
            )
        engine.policies[policy.hash] = policy
    if image.active_policy:
        if image.active_policy not in engine.policies:
            raise SnapshotError(
                f"engine snapshot: active policy {image.active_policy} is not stored in it"
            )
        engine.active = engine.policies[image.active_policy]
    if image.shadow_policy:
        if image.shadow_policy not in engine.policies:
            raise SnapshotError(
                f"engine snapshot: shadow policy {image.shadow_policy} is not stored in it"
            )
        engine.shadow = engine.policies[image.shadow_policy]

    state = engine.state
    state.clock = image.clock
    state.started = image.started
    state.guard = ModeGuard.from_image(image.guard)
    state.kills = {kill_key(kill.scope, kill.key): kill for kill in image.kills}
    state.disabled = {(item.account, item.strategy): item for item in image.disabled}
    state.markets = {snapshot.symbol: snapshot for snapshot in image.markets}
    state.marks = {item.symbol: item.mark for item in image.marks}
    state.accounts = {record.account: record for record in image.accounts}
    state.books = {(book.account, book.symbol): book for book in image.books}
    state.holders = {item.symbol: dict.fromkeys(item.accounts) for item in image.holders}
    state.open_orders = {order.client_order_id: order for order in image.open_orders}
    state.done = RetainedMap(
        {order.client_order_id: order for order in image.done_orders},
        {order.client_order_id: order for order in image.done_orders_previous})
    state.windows = RateWindows.from_image(image.windows)
    state.duplicates = DuplicateWindow.from_image(image.duplicates)
    state.fill_ids = RetainedSet(image.fill_ids, image.fill_ids_previous)
    state.fill_contents = RetainedMap(_fill_contents_map(image.fill_contents),
                                      _fill_contents_map(image.fill_contents_previous))
    state.decided = RetainedMap(_decided_map(image.decided), _decided_map(image.decided_previous))
    state.decided_intents = RetainedMap(_intent_map(image.decided_intents),
                                        _intent_map(image.decided_intents_previous))
    state.counters = {item.name: item.value for item in image.counters}
    state.next_roll_at = image.next_roll_at
    state.flatten_seq = image.flatten_seq
    state.limits_journaled = dict.fromkeys(image.limits_journaled)
    state.firm = image.firm
    state.firm_rate_limited = {(item.account, item.strategy, item.intent_id): item
                               for item in image.firm_rate_limited}
    try:
        state.set_behaviour(image.behaviour)  # rebuilds the ladders under its resting semantics
    except EngineTooNew as exc:
        raise SnapshotError(f"engine snapshot: {exc}") from exc
    state.rebuild_order_ids()


def _decided_images(decided: dict[tuple[str, str, str], Decision]) -> list[DecidedImage]:
    return [DecidedImage(account, strategy, intent_id, decision)
            for (account, strategy, intent_id), decision in decided.items()]


def _decided_map(images: list[DecidedImage]) -> dict[tuple[str, str, str], Decision]:
    return {(item.account, item.strategy, item.intent_id): item.decision for item in images}


def _intent_map(intents: list[OrderIntent]) -> dict[tuple[str, str, str], OrderIntent]:
    return {(intent.account, intent.strategy, intent.intent_id): intent for intent in intents}


def _fill_contents_images(contents: dict[str, tuple[FillSeen, ...]]) -> list[FillContentsImage]:
    return [FillContentsImage(fill_id, list(seen)) for fill_id, seen in contents.items()]


def _fill_contents_map(images: list[FillContentsImage]) -> dict[str, tuple[FillSeen, ...]]:
    return {item.fill_id: tuple(item.seen) for item in images}
