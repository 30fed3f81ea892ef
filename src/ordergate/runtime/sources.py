"""Where input events come from, and how a restarted run knows where it stopped.

An events file is JSON Lines: one event per line with a `type` field (see
`model/events.py`). `read_lines` decodes it lazily, line by line, and reports a bad line with
its number and the field msgspec names, without losing the lines before it.

Resuming (the crash-restart promise). Every batch of source events the runtime journals
starts with a META record, a `SourceMark` naming the source, the line number of the batch's
first event and how many events follow. The batch's events are then appended as INPUT
records in line order. Records become durable in append order, so after any crash the
journal holds a mark followed by the first j <= count of its events, and the next line to
read is `mark.line + j` (lines between events are only blank or skipped bad lines, and a
batch never spans one: a bad or blank line ends the batch). Broker answers and recovery
events are appended after a `FeedbackMark`, so INPUT records are always attributed to the
mark that precedes them. The newest `SourceMark` gives the resume point; when the newest
snapshot lies beyond it (snapshots follow a batch's feedback), the runtime scans back from
the snapshot to it. On restart the runtime re-reads the last source event it journaled
and compares its bytes with the journal's, so resuming from a different file is refused
instead of silently skipping lines.

An interrupted batch (its mark says `count` events but fewer are durable: ALWAYS durability,
or a batch large enough to spill) is completed from the same file before anything else,
then acted on as one batch, so the journal reads exactly as if no crash had happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from ordergate.model.events import EngineUpgrade, InputEvent
from ordergate.model.intent import OrderIntent, reserved_id_problem


class SourceMark(msgspec.Struct, frozen=True, kw_only=True, tag="og.source", tag_field="type"):
    """META: the next `count` INPUT records are lines `line`, `line + 1`, ... of `source`."""

    source: str
    line: int
    count: int


class FeedbackMark(msgspec.Struct, frozen=True, kw_only=True, tag="og.feedback",
                   tag_field="type"):
    """META: the INPUT records that follow come from the broker or from recovery."""

    origin: str


class UnresolvedDispatch(msgspec.Struct, frozen=True, kw_only=True, tag="og.unresolved",
                         tag_field="type", omit_defaults=True):
    """META: the broker gave no answer for this order; it must be resolved by asking the
    broker (never by re-sending blindly) before it can be forgotten.

    `resend_held`: its resend was held (circuit open, automatic halt, or a 429 on the resend),
    so from then on it is only asked about, never sent again, across restarts too. A note
    repeats for an order that was already unresolved when its resend was held. Left out
    when false, so the notes of orders never held read as they always did (and older notes
    decode as not held)."""

    client_order_id: str
    detail: str = ""
    resend_held: bool = False


class ResolvedDispatch(msgspec.Struct, frozen=True, kw_only=True, tag="og.resolved",
                       tag_field="type"):
    """META: an earlier unresolved order now has a known outcome."""

    client_order_id: str
    outcome: str


RuntimeNote = SourceMark | FeedbackMark | UnresolvedDispatch | ResolvedDispatch
NOTE_PREFIX = b'{"type":"og.'

_note_decoder = msgspec.json.Decoder(RuntimeNote)
note_encoder = msgspec.json.Encoder()


def decode_note(payload: bytes) -> RuntimeNote | None:
    """A runtime note, or None for META records other writers own (run manifests...)."""
    if not payload.startswith(NOTE_PREFIX):
        return None
    try:
        note: RuntimeNote = _note_decoder.decode(payload)
        return note
    except msgspec.ValidationError:
        return None


class BadLine(Exception):
    """A line that is not a valid event; the message names the file, line and field."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"{path}: line {line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


_event_decoder = msgspec.json.Decoder(InputEvent)


def decode_event(raw: bytes) -> InputEvent:
    """One JSON object to an InputEvent (raises msgspec errors that name the field)."""
    event: InputEvent = _event_decoder.decode(raw)
    return event


UPGRADE_REFUSED = ("type engine_upgrade: the gateway journals its engine's upgrades itself, at "
                   "start-up; no input may carry one")


def new_event(path: str, line: int, event: InputEvent) -> InputEvent | BadLine:
    """A decoded line as a NEW input: `event`, or the BadLine of an intent whose own
    client_order_id is reserved (`model.intent.reserved_id_problem`) or of an engine upgrade
    (the runtime's own input); a journal is read without these checks."""
    if isinstance(event, OrderIntent):
        problem = reserved_id_problem(event)
        if problem is not None:
            return BadLine(path, line, f"field client_order_id: {problem}")
    elif isinstance(event, EngineUpgrade):
        return BadLine(path, line, UPGRADE_REFUSED)
    return event


def _describe(exc: msgspec.MsgspecError) -> str:
    text = str(exc)
    # msgspec says "... - at `$.qty`"; users read "field qty: ...".
    message, sep, where = text.rpartition(" - at `")
    if sep:
        field = where.rstrip("`").removeprefix("$.").removeprefix("$")
        return f"field {field}: {message}" if field else message
    return text


SourceLine = tuple[int, InputEvent | BadLine | None]


UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def text_problem(raw: bytes, *, first: bool = True) -> str | None:
    """Why `raw` (a file, or its first line when `first`) is not UTF-8 text (the encoding
    JSON and JSON Lines require), or None."""
    if first and raw.startswith(_UTF16_BOMS):
        return "the file is UTF-16 text; save it as UTF-8"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        where = f"column {exc.start - line_start + 1}"
        if line_start:
            line = raw.count(b"\n", 0, exc.start) + 1
            where = f"line {line}, {where}"
        return (f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at {where}); "
                "save the file as UTF-8")
    return None


def read_lines(path: Path, start_line: int = 1) -> Iterator[SourceLine]:
    """(line number, event | BadLine | None for a blank line), from `start_line` on.

    Lines before `start_line` are skipped without being decoded. A UTF-8 byte order mark
    (which some editors write) is not part of the first line; a line that is not UTF-8 text
    is a bad line like any other.
    """
    name = str(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number < start_line:
                continue
            if number == 1:
                raw = raw.removeprefix(UTF8_BOM)
            stripped = raw.strip()
            if not stripped:
                yield number, None
                continue
            try:
                event = _event_decoder.decode(stripped)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                problem = text_problem(stripped, first=number == 1) or _describe(exc)
                yield number, BadLine(name, number, problem)
            except UnicodeDecodeError:
                yield number, BadLine(name, number, text_problem(stripped, first=number == 1)
                                      or "not UTF-8 text; save the file as UTF-8")
            else:
                yield number, new_event(name, number, event)


def read_line(path: Path, line: int) -> bytes | None:
    """The raw bytes of one line (stripped), or None past the end of the file."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == line:
                return (raw.removeprefix(UTF8_BOM) if number == 1 else raw).strip()
    return None
