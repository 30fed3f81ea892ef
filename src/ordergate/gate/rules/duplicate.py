"""Duplicates: a client order id seen before (DUP-001), or the same order from the same
strategy inside the duplicate window (DUP-002)."""

from __future__ import annotations

from ordergate.gate.context import RuleContext, duration_text
from ordergate.model.decision import Violation


def duplicate_client_order_id(ctx: RuleContext) -> Violation | None:
    client_order_id = ctx.intent.client_order_id
    if client_order_id is None or not ctx.view.client_order_id_seen(client_order_id):
        return None
    return Violation(
        code="DUP-001", observed=client_order_id, limit="unique client_order_id",
        detail=f"client_order_id {client_order_id} was already accepted",
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
