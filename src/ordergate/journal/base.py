"""The journal contract: an append-only, durable, hash-chained log of every input event
and every output. It is the write-ahead log (invariant 2): nothing outside the process
happens because of an event (no broker call, no acknowledgement to a client) before the
records that caused it are durable.

Backends live beside this module (`sqlite.py`, `postgres.py`); only `open_journal(url)`
chooses one. Nothing outside `journal/` imports a backend module.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import msgspec


class RecordKind(enum.StrEnum):
    INPUT = "in"  # an input event (intent, market, fill, command...)
    OUTPUT = "out"  # an engine output (decision, dispatch, cancel, mode change, alert)
    META = "meta"  # run manifest, dispatch outcome notes: not fed to the engine on replay


class Durability(enum.StrEnum):
    ALWAYS = "always"  # every append is durable (fsync / commit) before append returns
    BATCH = "batch"  # appends are buffered; flush() makes all of them durable at once
    NONE = "none"  # the OS decides; for tests and throwaway runs only


class JournalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One record. `payload` is the event's canonical JSON bytes. `hash` covers the previous
    record's hash and every other field, so an edit, drop or reorder breaks the chain.
    `run_id` and `recorded_at_ns` (wall clock) are excluded from determinism comparisons by
    design: they say when and by which process, not what."""

    seq: int
    kind: RecordKind
    run_id: str
    recorded_at_ns: int
    payload: bytes
    prev_hash: str
    hash: str


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Engine state after applying every record up to and including `seq`. `chain_hash` is
    the hash of record `seq`, so a snapshot is checked against the chain before use."""

    seq: int
    chain_hash: str
    state: bytes


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    message: str = ""
    notes: tuple[str, ...] = ()
    """What an operator should know that is not a failure (a snapshot nothing attests)."""


class JournalError(Exception):
    """The journal cannot be read or written. Writers must fail closed on it."""


@runtime_checkable
class DetachedSnapshots(Protocol):
    """A journal whose snapshots another process may store. The runtime forks a child that
    encodes the engine state and stores it with `write_detached` while the parent goes on
    deciding, so a large state does not stall the order path; after reaping the child, the
    parent calls `adopt_detached`. SQLite writes a file beside the journal (`snapfiles`);
    PostgreSQL inserts the row over a connection the child opens itself."""

    def last_hash(self) -> str:
        """The hash of record `last_seq()`, which a snapshot taken now is checked against."""
        ...

    def write_detached(self, seq: int, chain_hash: str, state: bytes) -> str:
        """In a forked child: store `state` as the snapshot at record `seq` (whose hash is
        `chain_hash`) durably, with nothing the parent owns: no inherited connection, lock or
        logger. Returns the digest of the stored state (`journal.attestation.state_digest`),
        for the parent to attest. Raises JournalError, whose message the parent logs."""
        ...

    def adopt_detached(self, seq: int, digest: str) -> int | None:
        """In the parent, once the child has exited: journal the attestation of the snapshot
        at `seq` (`digest`, as `write_detached` returned it), which makes it usable, and let
        retention drop older ones; returns its stored size in bytes, or None if no snapshot
        at `seq` was stored (then nothing is attested)."""
        ...


class Journal(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def durability(self) -> Durability: ...

    @property
    def run_id(self) -> str: ...

    def append(self, kind: RecordKind, payload: bytes) -> int:
        """Add a record and return its sequence number (1, 2, ...)."""
        ...

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]: ...

    def flush(self) -> None:
        """Every record appended so far is durable when this returns (under ALWAYS and
        BATCH). Raises JournalError when it cannot be made durable."""
        ...

    def last_seq(self) -> int: ...

    def check_writable(self) -> None:
        """Raise JournalError naming why a write would fail now (the storage is read-only,
        gone, locked, fenced, unreachable, or an earlier write failed). Adds no record and
        leaves nothing behind: a readiness probe."""
        ...

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        """Records in sequence order, start and end inclusive."""
        ...

    def save_snapshot(self, seq: int, state: bytes) -> None: ...

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot whose chain_hash matches the chain; None if there is none."""
        ...

    def verify(self) -> VerifyReport: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- the hash chain (every backend)

GENESIS_HASH = "0" * 64
"""The `prev_hash` of record 1."""

_HASH_DOMAIN = b"ordergate.journal.v1\x00"
_U16 = 0xFFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


def record_hash(prev_hash: str, seq: int, kind: str, run_id: str, recorded_at_ns: int,
                payload: bytes) -> str:
    """The chain hash of one record, as lowercase hex. The one definition of the byte layout.

    sha256 over, in this order (integers big-endian):

    * the domain tag ``b"ordergate.journal.v1\\x00"``
    * ``prev_hash``: u16 length, then its UTF-8 bytes (64 hex digits in a sound chain)
    * ``seq``: u64
    * ``kind``: u16 length, then UTF-8 bytes (``"in"``, ``"out"``, ``"meta"``)
    * ``run_id``: u16 length, then UTF-8 bytes
    * ``recorded_at_ns``: i64
    * ``payload``: u64 length, then the bytes

    Every variable-length field carries its length, so no two different records share an
    encoding. A value that cannot be encoded (negative seq, an over-long string) raises
    ValueError naming the field.
    """
    prev = prev_hash.encode()
    kind_bytes = kind.encode()
    run = run_id.encode()
    if not 0 <= seq <= _U64:
        raise ValueError(f"seq: {seq} is outside 0..2^64-1")
    if not _I64_MIN <= recorded_at_ns <= _I64_MAX:
        raise ValueError(f"recorded_at_ns: {recorded_at_ns} does not fit in 64 bits")
    for field, value in (("prev_hash", prev), ("kind", kind_bytes), ("run_id", run)):
        if len(value) > _U16:
            raise ValueError(f"{field}: {len(value)} bytes is longer than 65535")
    digest = hashlib.sha256(_HASH_DOMAIN)
    digest.update(
        len(prev).to_bytes(2, "big") + prev
        + seq.to_bytes(8, "big")
        + len(kind_bytes).to_bytes(2, "big") + kind_bytes
        + len(run).to_bytes(2, "big") + run
        + recorded_at_ns.to_bytes(8, "big", signed=True)
        + len(payload).to_bytes(8, "big")
    )
    digest.update(payload)
    return digest.hexdigest()


class RecordHasher:
    """`record_hash` for the hot paths (appends, verification): the same bytes, hashed with
    the per-(kind, run_id) part of the layout encoded once instead of once per record.

    A journal hashes every record it writes and verification hashes every record it reads,
    mostly with two or three kinds and one run_id, so rebuilding those length-prefixed bytes
    and re-checking their bounds each time is the larger part of a small record's cost. Any
    value the layout cannot hold goes to `record_hash`, which raises its ValueError.
    """

    __slots__ = ("_middles",)

    def __init__(self) -> None:
        # (kind, run_id) -> u16 length + kind bytes + u16 length + run_id bytes
        self._middles: dict[tuple[str, str], bytes] = {}

    def __call__(self, prev_hash: str, seq: int, kind: str, run_id: str, recorded_at_ns: int,
                 payload: bytes) -> str:
        middle = self._middles.get((kind, run_id))
        if middle is None:
            middle = self._middle(kind, run_id)
        prev = prev_hash.encode()
        if len(prev) > _U16 or not 0 <= seq <= _U64 or \
                not _I64_MIN <= recorded_at_ns <= _I64_MAX:
            return record_hash(prev_hash, seq, kind, run_id, recorded_at_ns, payload)
        digest = hashlib.sha256(b"".join((
            _HASH_DOMAIN, _U16_BYTES.pack(len(prev)), prev, _U64_BYTES.pack(seq), middle,
            _TAIL_BYTES.pack(recorded_at_ns, len(payload)), payload)))
        return digest.hexdigest()

    def _middle(self, kind: str, run_id: str) -> bytes:
        middle = _middle(kind, run_id)
        if len(self._middles) < _MAX_CACHED_MIDDLES:  # a chain has few writers
            self._middles[(kind, run_id)] = middle
        return middle


def chain_hasher(run_id: str) -> Callable[[str, int, str, int, bytes], str]:
    """`record_hash` for one writer's appends: (prev_hash, seq, kind, recorded_at_ns, payload)
    -> hash, with `run_id` fixed. The same bytes as `record_hash`, but everything but the
    record's own fields is encoded once, and a record costs one join and one sha256: a
    journal hashes every record it writes, several per intent. A value the layout cannot
    hold (or a prev_hash that is not 64 ASCII characters) goes to `record_hash`, which
    raises its ValueError naming the field."""
    middles: dict[str, bytes] = {}
    for kind in RecordKind:
        try:
            middles[kind.value] = _middle(kind.value, run_id)
        except ValueError:  # an over-long run_id: every record takes the reference path
            middles.clear()
            break
    head = _HASH_DOMAIN + _U16_BYTES.pack(64)
    sha256 = hashlib.sha256
    join = b"".join
    pack_seq = _U64_BYTES.pack
    pack_tail = _TAIL_BYTES.pack

    def hash_record(prev_hash: str, seq: int, kind: str, recorded_at_ns: int,
                    payload: bytes) -> str:
        prev = prev_hash.encode()
        middle = middles.get(kind)
        if middle is not None and len(prev) == 64:
            try:
                return sha256(join((head, prev, pack_seq(seq), middle,
                                    pack_tail(recorded_at_ns, len(payload)),
                                    payload))).hexdigest()
            except struct.error:  # seq or recorded_at_ns out of range
                pass
        return record_hash(prev_hash, seq, kind, run_id, recorded_at_ns, payload)

    return hash_record


def _middle(kind: str, run_id: str) -> bytes:
    """u16 length + kind bytes + u16 length + run_id bytes (ValueError if one is too long)."""
    kind_bytes = kind.encode()
    run = run_id.encode()
    if len(kind_bytes) > _U16 or len(run) > _U16:
        # Let the reference definition name the field.
        record_hash(GENESIS_HASH, 0, kind, run_id, 0, b"")
    return _U16_BYTES.pack(len(kind_bytes)) + kind_bytes + _U16_BYTES.pack(len(run)) + run


_U16_BYTES = struct.Struct(">H")
_U64_BYTES = struct.Struct(">Q")
_TAIL_BYTES = struct.Struct(">qQ")  # recorded_at_ns, payload length
_MAX_CACHED_MIDDLES = 4096


RawRow = tuple[int, str, str, int, bytes, str, str]
"""A stored record exactly as read back: (seq, kind, run_id, recorded_at_ns, payload,
prev_hash, hash). Verification works on raw rows so that a damaged field (an unknown kind,
say) is reported as a broken chain rather than failing to decode. A field may hold a value of
the wrong type (SQLite keeps whatever a hand-edit stores: `replace()` on a payload stores
text); `record_damage` says which."""

_COLUMNS: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("seq", int, "an integer"),
    ("kind", str, "text"),
    ("run_id", str, "text"),
    ("recorded_at_ns", int, "an integer"),
    ("payload", (bytes, bytearray, memoryview), "bytes (a blob)"),
    ("prev_hash", str, "text"),
    ("hash", str, "text"),
)
_TYPE_NAMES = {str: "text", bytes: "bytes (a blob)", int: "an integer", float: "a real number",
               type(None): "NULL"}


def record_damage(row: RawRow) -> str | None:
    """Why `row` cannot be a record because a field holds a value of the wrong type ("payload:
    stored as text, expected bytes (a blob)"), or None if every field has its type. A journal
    only writes each field with its type, so a wrong one was stored by something else (an
    edit with SQL string functions, say): the record is damaged, and is reported as such
    rather than failing where the field is used."""
    seq, kind, run_id, recorded_at_ns, payload, prev_hash, stored_hash = row
    if type(seq) is int and type(kind) is str and type(run_id) is str and \
            type(recorded_at_ns) is int and type(payload) is bytes and \
            type(prev_hash) is str and type(stored_hash) is str:
        return None  # the usual case, without the loop below
    for (field, expected, expected_name), value in zip(_COLUMNS, row, strict=True):
        if not isinstance(value, expected) or isinstance(value, bool):
            found = _TYPE_NAMES.get(type(value), type(value).__name__)
            return f"{field}: stored as {found}, expected {expected_name}"
    return None


def verify_rows(rows: Iterable[RawRow], *, expected_last_seq: int | None = None) -> VerifyReport:
    """Recompute the chain over `rows` (in stored seq order, starting at record 1).

    Reports the first record that is missing (a gap: deleted), out of place (reordered or
    renumbered), or whose stored hashes disagree with its contents (edited). With
    `expected_last_seq` (what a live writer knows it wrote), a chain that ends early is
    reported as truncated.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    hasher = RecordHasher()
    for row in rows:
        seq, kind, run_id, recorded_at_ns, payload, prev_hash, stored_hash = row
        # `record_damage`, called only when a field has another type than the one written
        damage = None if type(seq) is int and type(kind) is str and type(run_id) is str and \
            type(recorded_at_ns) is int and type(payload) is bytes and \
            type(prev_hash) is str and type(stored_hash) is str else record_damage(row)
        if damage is not None and type(seq) is not int:
            return VerifyReport(ok=False, records=checked, first_bad_seq=expected_seq,
                                message=f"the record after record {expected_seq - 1} is "
                                        f"damaged: {damage}")
        if seq != expected_seq:
            if seq > expected_seq:
                why = f"record {expected_seq} is missing (next stored record is {seq})"
            else:
                why = f"record {seq} is out of order (expected {expected_seq})"
            return VerifyReport(ok=False, records=checked, first_bad_seq=expected_seq,
                                message=why)
        if damage is not None:
            return VerifyReport(ok=False, records=checked, first_bad_seq=seq,
                                message=f"record {seq} is damaged, a field holds a value of "
                                        f"the wrong type: {damage}")
        if prev_hash != expected_prev:
            return VerifyReport(
                ok=False, records=checked, first_bad_seq=seq,
                message=f"record {seq}: prev_hash does not match the hash of record {seq - 1} "
                        "(a record was edited, removed or reordered)",
            )
        try:
            computed = hasher(prev_hash, seq, kind, run_id, recorded_at_ns, bytes(payload))
        except ValueError as exc:
            return VerifyReport(ok=False, records=checked, first_bad_seq=seq,
                                message=f"record {seq}: cannot be hashed: {exc}")
        if computed != stored_hash:
            return VerifyReport(
                ok=False, records=checked, first_bad_seq=seq,
                message=f"record {seq}: stored hash does not match its contents "
                        "(a field was edited)",
            )
        expected_prev = stored_hash
        expected_seq += 1
        checked += 1
    if expected_last_seq is not None and checked < expected_last_seq:
        return VerifyReport(
            ok=False, records=checked, first_bad_seq=checked + 1,
            message=f"the chain ends at record {checked} but {expected_last_seq} were written "
                    "(records were removed from the end)",
        )
    return VerifyReport(ok=True, records=checked, message=f"{checked} records, chain intact")


def redact_url(url: str) -> str:
    """`url`, or a message that holds one, with any password replaced by ``***``, for
    messages and logs: in a URL (``user:secret@host``, ``?password=secret``) and in a libpq
    keyword connection string (``password=secret``, ``password = 'a b'``); ``sslpassword``
    too.

    A password is often written unencoded, so a URL's is found by where its userinfo ends,
    not by the characters it may hold. The userinfo of ``scheme://user:password@host...``
    ends at an '@' followed by a host list (``h``, ``h:5432``, ``[::1]``, ``h1,h2:5433``);
    the user runs to its first ':' and never holds a '/'. Of the '@'s on the URL's line the
    last that passes counts, so a password keeps every '#', '?', '/', '@' or space in it and
    every password of a malformed multi-host URL (``u:a@h1,v:b@h2/db``) is masked:

    * an '@' whose hosts go on with '/', '?' or a port passes, unless the text before it
      holds whitespace and begins as a host does (``h:5432/``, ``[::1]``);
    * an '@' whose hosts end the URL (at whitespace, a quote, punctuation or the end) is
      one in the URL's query or in the message after the URL (``h:5432/db?user=ops@corp``,
      ``role "ops@corp"``), and does not pass, when a '?' or whitespace separates it from
      an earlier '@' that passed the first test; else when the text before it begins as a
      host does and holds a '?' or whitespace; else when that text holds whitespace and
      the hosts are followed by neither the text's end nor whitespace (after a quote or a
      ':' at most).

    A query's ``password=`` or ``sslpassword=`` value runs to the next '&' or the end of
    the line (libpq reads a '#' or a space in it as part of the password); a URL in quotes
    ends at its closing quote, and a value already masked (``***``) stays as it is."""
    masked: list[str] = []
    done = 0
    for start, end in sorted(userinfo_password_spans(url) + _query_password_spans(url)):
        if start >= done:
            masked.append(url[done:start] + "***")
        done = max(done, end)  # a span inside (or reaching past) one masked already
    masked.append(url[done:])
    return _KEYWORD_PASSWORD.sub(r"\1***", "".join(masked))


def url_passwords(text: str) -> list[str]:
    """Every password `redact_url` masks in the URLs of `text`, as written there."""
    return [text[start:end] for start, end in
            userinfo_password_spans(text) + _query_password_spans(text)
            if text[start:end] != "***"]


def userinfo_password_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the password in the userinfo of each URL in `text`."""
    spans: list[tuple[int, int]] = []
    for scheme in _SCHEME.finditer(text):
        found = userinfo_password(text, scheme.end())
        if found is not None:
            spans.append(found)
    return spans


def userinfo_password(text: str, start: int) -> tuple[int, int] | None:
    """(start, end) of the password of the URL in `text` whose authority begins at `start`
    (just after its '://'), `end` being the index of the '@' that ends its userinfo (the
    rule is `redact_url`'s); None when the URL holds no password before its host."""
    line_end = _line_end(text, start)
    later_url = _SCHEME.search(text, start, line_end)
    stop = line_end if later_url is None else later_url.start()
    ends: list[tuple[int, bool]] = []  # (index of an '@' a host follows, whether 'strong')
    at = text.find("@", start, stop)
    while at >= 0:
        hosts = _HOSTS.match(text, at + 1, stop)
        after = hosts.end() if hosts is not None else at + 1
        follower = text[after] if after < stop else ""
        if follower in ("/", "?") or (hosts is not None and _PORT.search(hosts.group(0))):
            ends.append((at, True))
        elif follower == "" or follower.isspace() or follower in _AFTER_URL:
            ends.append((at, False))
        at = text.find("@", at + 1, stop)
    for index in range(len(ends) - 1, -1, -1):
        at, strong = ends[index]
        userinfo = text[start:at]
        colon = userinfo.find(":")
        if "/" in (userinfo if colon < 0 else userinfo[:colon]):
            continue  # a path or a query, not a user
        if colon < 0:
            return None  # a user and no password
        spaced = any(char.isspace() for char in userinfo)
        # `host:port/db?...` or `[ipv6]...`: a host, not a user, is before the ':'
        host_first = userinfo.startswith("[") or \
            _PORT_THEN_PATH.match(userinfo, colon + 1) is not None
        if strong:
            if spaced and host_first:
                continue
            return start + colon + 1, at
        hosts_before = [earlier for earlier, was_strong in ends[:index] if was_strong]
        if hosts_before:
            between = text[hosts_before[-1]:at]
            if "?" in between or any(char.isspace() for char in between):
                continue  # in the query of, or in the text after, a URL with a host
        elif host_first and ("?" in userinfo or spaced):
            continue  # in the query of, or in the text after, a URL without a user
        elif spaced and not _ENDS_URL.match(text, at + 1):
            continue  # in the text after the URL
        return start + colon + 1, at
    return None


def _query_password_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for key in _QUERY_PASSWORD.finditer(text):
        start = key.end()
        if _MASKED.match(text, start):
            spans.append((start, start + 3))
            continue
        end = _line_end(text, start)
        ampersand = text.find("&", start, end)
        if ampersand >= 0:
            end = ampersand
        urls = list(_SCHEME.finditer(text, _line_start(text, start), start))
        opening = text[urls[-1].start() - 1] if urls and urls[-1].start() > 0 else ""
        if opening in ("'", '"'):  # a quoted URL ends at its closing quote
            closing = re.compile(re.escape(opening) + r"(?=$|[\s:;,)])")
            quote = closing.search(text, start, end)
            if quote is not None:
                end = quote.start()
        spans.append((start, end))
    return spans


def _line_start(text: str, index: int) -> int:
    return max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1


def _line_end(text: str, index: int) -> int:
    ends = [found for found in (text.find("\n", index), text.find("\r", index)) if found >= 0]
    return min(ends, default=len(text))


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_HOST = r"(?:\[[^\]\s/@]*\]|[\w.%~\-]*)(?::[^\s/?@,'\"]*)?"
_HOSTS = re.compile(rf"{_HOST}(?:,{_HOST})*")
_PORT = re.compile(r":\d")
_PORT_THEN_PATH = re.compile(r"\d*[/?]")
# a host list that ends a URL: the text's end, or whitespace (after a quote or a ':')
_ENDS_URL = re.compile(rf"{_HOST}(?:,{_HOST})*['\"]?(?::?\s|\Z)")
# what may follow a URL's last host where the URL ends: its end, a quote, punctuation
_AFTER_URL = frozenset("'\")]>;,.:!")
_QUERY_PASSWORD = re.compile(r"[?&](?:ssl)?password=", re.IGNORECASE)
_MASKED = re.compile(r"\*\*\*(?=$|[&\s'\":;,)])")

# libpq's `keyword = value`: a value in single quotes (with \' and \\ escapes; unterminated, it
# runs to the end) or up to the next whitespace. Not after ? or &: that is the URL's query,
# redacted above. An unquoted value ends only at whitespace, so a message's punctuation after
# it is masked too, rather than risk showing part of a password.
_KEYWORD_PASSWORD = re.compile(
    r"((?<![\w?&])(?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|\\?$)|(?:[^\s\\]|\\.)*\\?)",
    re.IGNORECASE,
)
