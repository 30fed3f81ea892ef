"""Evaluation latency, kept out of the deterministic outputs.

How long the engine took to decide is wall-clock time: it differs on every run, so it
cannot be in an OUTPUT record (replay compares those byte for byte). The runtime measures
each intent's `engine.handle` and writes, once per batch, a META record with the batch's
(intent_id, nanoseconds) pairs, just before the batch's flush.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

LATENCY_PREFIX = b'{"type":"evidence.latency"'


class DecisionLatency(msgspec.Struct, frozen=True, kw_only=True, tag="evidence.latency",
                      tag_field="type"):
    """META: how long the engine took to handle each intent of a batch, in nanoseconds."""

    latencies: list[tuple[str, int]]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DecisionLatency)


def encode_latencies(pairs: Iterable[tuple[str, int]]) -> bytes:
    return _encoder.encode(DecisionLatency(latencies=list(pairs)))


def decode_latencies(payload: bytes) -> DecisionLatency | None:
    """The note in a META payload, or None for META records of another kind."""
    if not payload.startswith(LATENCY_PREFIX):
        return None
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError:
        return None
