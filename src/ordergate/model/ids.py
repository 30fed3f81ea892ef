"""Deterministic client order ids (invariant 3): the same intent always maps to the same id,
so a dispatch repeated after a crash is recognised by the broker instead of duplicated.

In the model, below the gate and the engine: the engine sends orders under these ids, the gate
asks whether the id an intent would get is already in use (DUP-001), and an intent's own
client_order_id may never start with `PREFIX` (`model.intent`), so it can never be the id
derived for another intent."""

from __future__ import annotations

import hashlib

PREFIX = "og-"
_DIGEST_CHARS = 28  # "og-" + 28 hex = 31 chars: fits Alpaca (48) and Deribit labels (64)


def derive_client_order_id(account: str, strategy: str, intent_id: str) -> str:
    digest = hashlib.sha256(f"{account}|{strategy}|{intent_id}".encode()).hexdigest()
    return PREFIX + digest[:_DIGEST_CHARS]
