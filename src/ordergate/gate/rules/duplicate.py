"""Duplicates: a client order id seen before (DUP-001): the intent's own, or for an intent
naming none the one derived from its (account, strategy, intent_id); or the same order from
the same strategy inside the duplicate window (DUP-002)."""

from __future__ import annotations

from ordergate.gate.context import RuleContext, duration_text
from ordergate.model.decision import Violation
from ordergate.model.ids import derive_client_order_id
from ordergate.model.intent import OrderIntent


def derived_client_order_id(intent: OrderIntent) -> str:
    """The client order id the engine gives an intent that names none (only the full table
    and a screened suspect ask; the screen never hashes)."""
    return derive_client_order_id(intent.account, intent.strategy, intent.intent_id)


def duplicate_client_order_id(ctx: RuleContext) -> Violation | None:
    intent = ctx.intent
    client_order_id = intent.client_order_id
    if client_order_id is not None:
        if not ctx.view.client_order_id_seen(client_order_id):
            return None
        return Violation(
            code="DUP-001", observed=client_order_id, limit="unique client_order_id",
            detail=f"client_order_id {client_order_id} was already accepted",
        )
    derived = derived_client_order_id(intent)
    if not ctx.view.client_order_id_seen(derived):
        return None
    return Violation(
        code="DUP-001", observed=derived, limit="unique client_order_id",
        detail=f"client_order_id {derived}, derived from (account, strategy, intent_id), is "
               f"already in use: intent_id {intent.intent_id} was reused after its decision "
               "was forgotten (decisions are kept two trading days), or an operator flatten "
               "order holds it; send a new intent_id",
    )


def duplicate_order(ctx: RuleContext) -> Violation | None:
    window = ctx.limits.duplicate_window
    if window is None:
        return None
    key = ctx.fingerprint  # `gate.context.fingerprint`, computed when the window is set
    if not ctx.view.fingerprint_seen(key, window):
        return None
    return Violation(
        code="DUP-002", observed=key, limit=duration_text(window),
        detail="the same order was accepted within duplicate_window",
    )
