"""Snapshot attestations: a snapshot's contents tied to the hash chain.

A snapshot names the record it was taken at and that record's hash, which ties its position
to the chain but not what it holds: a snapshot edited where it is stored (a file beside an
SQLite journal, a row in PostgreSQL) with its own digest recomputed would still be trusted.
So whoever stores a snapshot then journals a META record (`SnapshotAttested`) with the
sha256 of the stored state, and a snapshot is used only if a record after its seq attests
exactly that digest. The record is in the chain: changing it is an edit `verify` reports.

A crash between storing a snapshot and journaling its attestation leaves a snapshot nothing
attests: it is not used (start-up replays from an older one, or from record 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import msgspec

from ordergate.journal.base import RawRow, RecordKind

ATTESTATION_PREFIX = b'{"type":"evidence.snapshot"'
DIGEST_PREFIX = "sha256:"
_META = RecordKind.META.value


class SnapshotAttested(msgspec.Struct, frozen=True, kw_only=True, tag="evidence.snapshot",
                       tag_field="type"):
    """META: the snapshot taken at record `seq` holds state whose sha256 is `digest`
    (`sha256:` + 64 hex digits)."""

    seq: int
    digest: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SnapshotAttested)


def state_digest(state: bytes) -> str:
    """`sha256:` + the hex sha256 of a snapshot's state, as an attestation holds it."""
    return DIGEST_PREFIX + hashlib.sha256(state).hexdigest()


def encode_attestation(seq: int, digest: str) -> bytes:
    return _encoder.encode(SnapshotAttested(seq=seq, digest=digest))


def decode_attestation(payload: bytes) -> SnapshotAttested | None:
    """The attestation in a META payload, or None for META records of another kind."""
    if not payload.startswith(ATTESTATION_PREFIX):
        return None
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError:
        return None


def collect(rows: Iterable[RawRow], into: dict[int, dict[str, int]]) -> Iterator[RawRow]:
    """Pass `rows` through, adding every attestation among them to `into` (snapshot seq ->
    digest -> seq of the record attesting it): attestations gathered on a read that happens
    anyway (verification, say). Only a record after the snapshot's can attest it."""
    for row in rows:
        if row[1] == _META:
            attested = decode_attestation(bytes(row[4]))
            if attested is not None and attested.seq < row[0]:
                into.setdefault(attested.seq, {}).setdefault(attested.digest, row[0])
        yield row
