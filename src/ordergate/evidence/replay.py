"""Replay verification: a journal's inputs through a fresh engine must give back, byte for
byte, the outputs the journal recorded after each of them (invariant 4).

The hash chain is checked first: replaying a tampered journal proves nothing. Then every
INPUT record, in order, goes to a fresh `Engine` (policies come from the journaled
`PolicyDocument` inputs, by hash; META records are not fed), and the OUTPUT records that
follow it are compared with what the engine produced, one by one.

A crash can cut a step short: the input was durable but the process died before its
outputs were appended (a large batch spilled to disk, or `always` durability). The restarted
runtime rebuilt its engine from the same input, so nothing diverged; such a step is counted
as `cut_short` (when the journaled outputs are a prefix of the replayed ones and the next
record was written by another process, or is the end of the journal), not as a mismatch.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import msgspec

from ordergate.engine.core import Engine
from ordergate.journal import (
    Durability,
    Journal,
    JournalError,
    RecordKind,
    VerifyReport,
    open_journal,
)
from ordergate.model.events import InputEvent
from ordergate.model.values import in_standard_arithmetic, journaled_digits

DECISION_PREFIX = b'{"type":"decision",'
INTENT_PREFIX = b'{"type":"intent",'
PROGRESS_EVERY = 4096
# From this many records on, `ordergate replay verify` checks the chain in a second process
# (`verify_journal(chain_url=...)`): below it, starting that process costs more than it saves.
PARALLEL_CHAIN_MIN_RECORDS = 100_000

_encode = msgspec.json.Encoder(order="deterministic").encode
_NOTHING: list[bytes] = []  # never appended to
# What replaying an edited record can raise: undecodable or invalid JSON, an unknown record
# kind, a value the model refuses, arithmetic on a value no valid event carries.
_DAMAGE = (msgspec.DecodeError, JournalError, ValueError, ArithmeticError)
_decode_input = msgspec.json.Decoder(InputEvent).decode


def unreadable_input(seq: int, exc: msgspec.DecodeError) -> JournalError:
    """What stops a replay (recovery, `status`, `replay verify`) at an INPUT record this
    version's model refuses: a journal written by an older version can hold a figure or a
    time the model now bounds (a quantity of 1E+400). Feeding it to an engine is impossible
    and skipping it would decide everything after it on another state, so the replay stops
    and says which record, what is wrong with it and what the operator can do."""
    problem = str(exc).replace(" - at `$`", "")
    if not isinstance(exc, msgspec.ValidationError):
        problem = f"not an input event ({problem})"
    return JournalError(
        f"record {seq} (an input) cannot be read by this version of ordergate: {problem}; "
        "replay the journal with the version that wrote it, or start a new journal")


def journaled_input(seq: int, payload: bytes) -> InputEvent:
    """The INPUT record `seq` as an event, or the JournalError `unreadable_input` says: for
    every reader of journaled inputs (recovery, rebuilds, replays, reports, what-ifs)."""
    try:
        event: InputEvent = _decode_input(payload)
    except msgspec.DecodeError as exc:
        # Once more without the digits rule, which came after journals that hold longer
        # figures: what a journal accepted stays readable (only this rare path pays for it).
        try:
            with journaled_digits():
                event = _decode_input(payload)
        except msgspec.DecodeError:
            raise unreadable_input(seq, exc) from None
    return event


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """The first place where replay and journal disagree. `journaled` / `replayed` are the
    JSON of the output each side has at that position ("" when that side has none)."""

    input_seq: int
    output_seq: int | None
    position: int
    input: str
    journaled: str
    replayed: str
    intent_id: str = ""
    message: str


class ReplayReport(msgspec.Struct, kw_only=True):
    ok: bool
    chain: VerifyReport
    records: int = 0
    inputs: int = 0
    outputs: int = 0
    outputs_matched: int = 0
    decisions: int = 0
    decisions_reproduced: int = 0
    mismatches: int = 0
    cut_short: list[int] = msgspec.field(default_factory=list)
    policies: list[str] = msgspec.field(default_factory=list)
    first_divergence: Divergence | None = None
    # the first journaled Decision the replay decided differently
    first_decision_divergence: Divergence | None = None

    @property
    def coverage(self) -> float:
        """Share of journaled decisions the replay reproduced byte for byte (1.0 when the
        journal holds none)."""
        return 1.0 if self.decisions == 0 else self.decisions_reproduced / self.decisions

    @property
    def message(self) -> str:
        if not self.chain.ok:
            return f"hash chain broken at seq {self.chain.first_bad_seq}: {self.chain.message}"
        text = (f"replay reproduced {self.decisions_reproduced}/{self.decisions} decisions and "
                f"{self.outputs_matched}/{self.outputs} outputs from {self.inputs} inputs")
        if self.first_divergence is not None:
            text += (f"; {self.mismatches} mismatching step(s), first at seq "
                     f"{self.first_divergence.output_seq or self.first_divergence.input_seq}")
        return text


def _intent_id(payload: bytes) -> str:
    if payload.startswith((DECISION_PREFIX, INTENT_PREFIX)):
        value = msgspec.json.decode(payload)
        if isinstance(value, dict):
            return str(value.get("intent_id", ""))
    return ""


class _Verifier:
    """One pass over the journal; holds the current step (an input and what it produced)."""

    def __init__(self, report: ReplayReport) -> None:
        self.report = report
        self.engine = Engine()
        self.input_seq = 0
        self.input_payload = b""
        self.input_run = ""
        self.produced: list[bytes] = []
        self.position = 0
        self.step_bad = False

    def on_input(self, seq: int, run_id: str, payload: bytes) -> None:
        self.report.inputs += 1
        self.input_seq = seq
        self.input_payload = payload
        self.input_run = run_id
        event = journaled_input(seq, payload)
        outputs = self.engine.handle(event)
        # most inputs (market data) produce nothing: share one empty list for them
        self.produced = [_encode(output) for output in outputs] if outputs else _NOTHING
        self.position = 0
        self.step_bad = False

    def on_output(self, seq: int, payload: bytes) -> None:
        report = self.report
        report.outputs += 1
        is_decision = payload.startswith(DECISION_PREFIX)
        if is_decision:
            report.decisions += 1
        position = self.position
        self.position += 1
        if self.input_seq == 0:
            self._diverge(seq, position, payload, b"",
                          "an output precedes every input in the journal")
            return
        if position < len(self.produced) and self.produced[position] == payload:
            report.outputs_matched += 1
            if is_decision:
                report.decisions_reproduced += 1
            return
        replayed = self.produced[position] if position < len(self.produced) else b""
        why = ("the replay produced a different output here" if replayed
               else "the journal has an output the replay did not produce")
        self._diverge(seq, position, payload, replayed, why)

    def end_step(self, next_run: str | None) -> None:
        """The step is over (the next input, or the end of the journal): outputs the replay
        produced that the journal lacks are a divergence, unless a crash cut the step short."""
        if self.input_seq == 0 or self.position >= len(self.produced) or self.step_bad:
            return
        crashed = next_run is None or next_run != self.input_run
        if crashed:
            self.report.cut_short.append(self.input_seq)
            return
        self._diverge(None, self.position, b"", self.produced[self.position],
                      "the replay produced an output the journal does not have")

    def _diverge(self, seq: int | None, position: int, journaled: bytes, replayed: bytes,
                 message: str) -> None:
        report = self.report
        if not self.step_bad:
            report.mismatches += 1
            self.step_bad = True
        first = report.first_divergence is None
        decision = journaled.startswith(DECISION_PREFIX) and (
            report.first_decision_divergence is None)
        if first or decision:
            divergence = Divergence(
                input_seq=self.input_seq, output_seq=seq, position=position,
                input=self.input_payload.decode(), journaled=journaled.decode(),
                replayed=replayed.decode(),
                intent_id=(_intent_id(journaled) or _intent_id(replayed)
                           or _intent_id(self.input_payload)),
                message=message,
            )
            if first:
                report.first_divergence = divergence
            if decision:
                report.first_decision_divergence = divergence


def verify_journal(journal: Journal, *, on_progress: Callable[[int], None] | None = None,
                   check_chain: bool = True, chain_url: str | None = None) -> ReplayReport:
    """Check the chain, then replay every input and compare every output byte for byte.

    `on_progress(seq)` is called every few thousand records. `report.ok` is true only when
    the chain is intact and no journaled output differs from its replay.

    `chain_url` (the journal's URL, credentials included) moves the chain check to a second
    process that opens the journal itself, so the two passes share the machine's cores
    instead of running one after the other. The answer is the same: the replay's result
    counts only when the chain is intact, and a broken chain is reported as such even when
    the replay stumbled over the damaged record first.
    """
    if not check_chain:
        return _replay(journal, VerifyReport(ok=True, records=0), on_progress)
    if chain_url is None:
        chain = journal.verify()
        if not chain.ok:
            return ReplayReport(ok=False, chain=chain)
        return _replay(journal, chain, on_progress)
    context = multiprocessing.get_context("spawn")  # no inherited connections or threads
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pending = pool.submit(_verify_chain, chain_url)
        try:
            report = _replay(journal, VerifyReport(ok=True, records=0), on_progress)
        except _DAMAGE:
            # what a damaged record makes the replay raise; the chain says whether it is one
            chain = pending.result()
            if not chain.ok:
                return ReplayReport(ok=False, chain=chain)
            raise
        chain = pending.result()
    if not chain.ok:
        return ReplayReport(ok=False, chain=chain)
    report.chain = chain
    return report


def _verify_chain(url: str) -> VerifyReport:
    """The chain check of `verify_journal(chain_url=...)`, in its own process."""
    journal = open_journal(url, durability=Durability.NONE, create=False, reader=True)
    try:
        return journal.verify()
    finally:
        journal.close()


@in_standard_arithmetic  # as the runtime decided: behaviours 1 to 4 in its 28 digits
def _replay(journal: Journal, chain: VerifyReport,
            on_progress: Callable[[int], None] | None) -> ReplayReport:
    report = ReplayReport(ok=False, chain=chain)
    verifier = _Verifier(report)
    input_kind = RecordKind.INPUT
    output_kind = RecordKind.OUTPUT
    policy_prefix = b'{"type":"policy",'
    on_input = verifier.on_input
    on_output = verifier.on_output
    records = 0
    for record in journal.read():
        records += 1
        kind = record.kind
        if kind is output_kind:
            on_output(record.seq, record.payload)
        elif kind is input_kind:
            if verifier.position < len(verifier.produced):
                # `end_step` has nothing to check when every replayed output was matched
                verifier.end_step(record.run_id)
            payload = record.payload
            if payload.startswith(policy_prefix):
                value = msgspec.json.decode(payload)
                if isinstance(value, dict):
                    report.policies.append(str(value.get("policy_hash", "")))
            on_input(record.seq, record.run_id, payload)
        elif verifier.position < len(verifier.produced) and record.run_id != verifier.input_run:
            # A META record by a restarted process: the step was cut short by the crash.
            verifier.end_step(record.run_id)
            verifier.produced = _NOTHING
        if on_progress is not None and record.seq % PROGRESS_EVERY == 0:
            on_progress(record.seq)
    report.records = records
    verifier.end_step(None)
    if on_progress is not None:
        on_progress(report.records)
    report.ok = report.mismatches == 0
    return report
