"""The evidence pack: `report.md`, `report.html` (charts inline as SVG) and the CSVs behind
every chart, from one journal.

What it proves is computed, not asserted: the hash chain is verified (against the heads kept
outside the journal too, as `journal verify` checks it) and every decision is replayed byte for
byte (`evidence.replay`). A journal that fails that check is not read any further, and every
part of the pack stops at the last record the check covered (a journal another process is
still writing grows meanwhile), so the pack says which records it covers.

The series come from the journal's own records: exposure and order-rate counts are the values
the gate read for each intent (its DecisionRecord), caps and throttles the limits it cited, so
the charts show what the gate saw, not a later reconstruction. The summary lists what was
proven, what failed and what remains risky.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from ordergate.evidence.decisions import (
    DecisionFilter,
    DecisionRow,
    iter_decisions,
    journaled_output,
)
from ordergate.evidence.export import ExportFormat, export_rows
from ordergate.evidence.replay import ReplayReport, journaled_input, verify_journal
from ordergate.evidence.reproduce import IncompleteRecord, decode_limits
from ordergate.journal import (
    Durability,
    Journal,
    JournalError,
    JournalRecord,
    RecordKind,
    Snapshot,
    VerifyReport,
    check_kept_heads,
    redact_url,
)
from ordergate.model.events import (
    Command,
    DecisionRecord,
    LimitsRecord,
    ModeChanged,
)
from ordergate.model.reasons import REGISTRY
from ordergate.policy.limits import ResolvedLimits

_RECORD_PREFIX = b'{"type":"decision_record",'
_LIMITS_PREFIX = b'{"type":"limits",'
_MODE_PREFIX = b'{"type":"mode",'
_COMMAND_PREFIX = b'{"type":"command",'
CONCENTRATION_SHARE = 0.6
CONCENTRATION_MIN = 10
NEAR_CAP = Decimal("0.9")
CHARTS = ("decisions", "exposure", "order-rate", "mode")
MODE_COLUMNS = ("ts", "from", "to", "by", "reasons")


class CheckedJournal:
    """A journal up to the last record its check covered, read-only: what every part of the
    pack reads. A journal another process is still writing grows while the pack is made; the
    records after the check are neither proven nor replayed, so no table counts them."""

    def __init__(self, journal: Journal, chain: VerifyReport) -> None:
        self._journal = journal
        self._chain = chain

    @property
    def url(self) -> str:
        return self._journal.url

    @property
    def durability(self) -> Durability:
        return self._journal.durability

    @property
    def run_id(self) -> str:
        return self._journal.run_id

    def last_seq(self) -> int:
        return self._chain.records

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        end = self._chain.records if end_seq is None else min(end_seq, self._chain.records)
        return self._journal.read(start_seq, end) if start_seq <= end else iter(())

    def verify(self) -> VerifyReport:
        """The check these records passed (it is not run again)."""
        return self._chain

    def latest_snapshot(self) -> Snapshot | None:
        return None  # a snapshot may be of records after the check; readers start at record 1

    def append(self, kind: RecordKind, payload: bytes) -> int:
        raise self._read_only()

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]:
        raise self._read_only()

    def save_snapshot(self, seq: int, state: bytes) -> None:
        raise self._read_only()

    def check_writable(self) -> None:
        raise self._read_only()

    def flush(self) -> None:
        """Nothing is ever appended here, so there is nothing to make durable."""

    def close(self) -> None:
        """The journal it reads belongs to the caller, who closes it."""

    def _read_only(self) -> JournalError:
        return JournalError(f"{redact_url(self.url)}: the evidence report only reads the journal")


def _journaled_limits(seq: int, record: LimitsRecord) -> ResolvedLimits:
    try:
        return decode_limits(record)
    except (msgspec.DecodeError, IncompleteRecord) as exc:
        raise JournalError(f"record {seq} (limits) cannot be read: {exc}") from None


@dataclass(slots=True)
class Series:
    """What the charts and CSVs are drawn from. `modes` rows are (ts, previous, mode, who
    changed it, why); `start_mode` is the mode in force when the window opens."""

    rows: list[DecisionRow] = field(default_factory=list)
    exposure: list[tuple[datetime, str, Decimal, Decimal, Decimal, Decimal | None,
                         Decimal | None]] = field(default_factory=list)
    rates: list[tuple[datetime, str, str, int, int]] = field(default_factory=list)
    modes: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    start_mode: str = "ACTIVE"
    missing_records: int = 0

    @property
    def final_mode(self) -> str:
        return self.modes[-1][2] if self.modes else self.start_mode


def _why(change: ModeChanged, command: Command | None) -> str:
    """The reasons a mode change lists, and the operator's own words when an operator's
    command made it (a resume lists no reason: the conditions it dropped are gone)."""
    reasons = [f"{reason.code}: {reason.detail}" if reason.detail else reason.code
               for reason in change.reasons]
    if (command is not None and command.operator == change.actor and command.reason
            and not any(command.reason in reason.detail for reason in change.reasons)):
        reasons.append(f"{command.action.value}: {command.reason}")
    return "; ".join(reasons)


def collect(journal: Journal, where: DecisionFilter) -> Series:
    series = Series(rows=list(iter_decisions(journal, where)))
    caps: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    since, until = where.since, where.until
    command: Command | None = None  # the operator's command of the current step
    for record in journal.read():
        payload = record.payload
        if record.kind is RecordKind.INPUT:
            command = None
            if payload.startswith(_COMMAND_PREFIX):
                event = journaled_input(record.seq, payload)
                assert isinstance(event, Command)
                command = event
            continue
        if record.kind is not RecordKind.OUTPUT:
            continue
        if payload.startswith(_LIMITS_PREFIX):
            limits_record = journaled_output(record.seq, payload)
            assert isinstance(limits_record, LimitsRecord)
            limits = _journaled_limits(record.seq, limits_record)
            caps[limits_record.limits_hash] = (limits.max_gross_exposure,
                                               limits.max_net_exposure)
        elif payload.startswith(_RECORD_PREFIX):
            output = journaled_output(record.seq, payload)
            assert isinstance(output, DecisionRecord)
            if (since and output.ts < since) or (until and output.ts > until):
                continue
            context = output.context
            gross_cap, net_cap = caps.get(output.limits_hash, (None, None))
            series.exposure.append((output.ts, output.account, context.gross_exposure,
                                    context.net_long_exposure, context.net_short_exposure,
                                    gross_cap, net_cap))
            for rate in context.rates:
                series.rates.append((output.ts, rate.scope, rate.key, rate.count,
                                     rate.max_count))
        elif payload.startswith(_MODE_PREFIX):
            change = journaled_output(record.seq, payload)
            assert isinstance(change, ModeChanged)
            if since and change.ts < since:
                series.start_mode = change.mode.value  # in force when the window opens
                continue
            if until and change.ts > until:
                continue
            series.modes.append((change.ts, change.previous.value, change.mode.value,
                                 change.actor, _why(change, command)))
    series.missing_records = len(series.rows) - sum(1 for row in series.rows if row.limits_hash
                                                    or row.policy_hash == "")
    return series


# ---------------------------------------------------------------- the summary


@dataclass(slots=True)
class Summary:
    proven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    risky: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def summarize(replay: ReplayReport, series: Series, final_mode: str) -> Summary:
    summary = Summary()
    chain = replay.chain
    if chain.ok:
        summary.proven.append(f"hash chain verified: {chain.records:,} records intact")
    else:
        # as `journal verify` says it: a snapshot or head that disagrees says the journal was
        # rewritten at or before its record, so only a cut end leaves the records before intact
        intact = (f" ({chain.records:,} records before it are intact)"
                  if chain.first_bad_seq == chain.records + 1 else "")
        summary.failed.append(f"journal verification failed at seq {chain.first_bad_seq}: "
                              f"{chain.message}{intact}")
    if chain.ok:
        text = (f"replay reproduced {replay.decisions_reproduced:,}/{replay.decisions:,} "
                f"decisions and {replay.outputs_matched:,}/{replay.outputs:,} outputs byte "
                "for byte")
        (summary.proven if replay.ok else summary.failed).append(text)
        if replay.first_divergence is not None:
            divergence = replay.first_divergence
            summary.failed.append(
                f"first divergence at seq {divergence.output_seq or divergence.input_seq}"
                f"{' (intent ' + divergence.intent_id + ')' if divergence.intent_id else ''}: "
                f"{divergence.message}")
        if replay.cut_short:
            summary.risky.append(f"{len(replay.cut_short)} step(s) cut short by a crash "
                                 "(input durable, outputs not journaled)")
    if final_mode and final_mode != "ACTIVE":
        summary.risky.append(f"the mode ended {final_mode}, not ACTIVE")
    denied = Counter(row.strategy for row in series.rows if row.decision == "DENY")
    total = sum(denied.values())
    if total >= CONCENTRATION_MIN:
        strategy, count = denied.most_common(1)[0]
        if count / total >= CONCENTRATION_SHARE:
            summary.risky.append(f"denials concentrated on strategy {strategy}: "
                                 f"{count:,} of {total:,} ({count / total:.0%})")
    near = [point for point in series.exposure
            if point[5] is not None and point[5] > 0 and point[2] >= point[5] * NEAR_CAP]
    if near:
        summary.risky.append(f"gross exposure reached {NEAR_CAP:.0%} of its cap at "
                             f"{len(near):,} decision(s)")
    saturated = sum(1 for point in series.rates if point[3] + 1 > point[4])
    if saturated:
        summary.risky.append(f"order-rate windows were full at {saturated:,} decision(s)")
    if series.missing_records:
        summary.risky.append(f"{series.missing_records:,} decision(s) carry no DecisionRecord "
                             "(written before decision records existed)")
    return summary


# ---------------------------------------------------------------- charts


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _bucket_width(times: Sequence[datetime]) -> timedelta:
    if len(times) < 2:
        return timedelta(minutes=1)
    span = max(times) - min(times)
    for width in (timedelta(minutes=minutes) for minutes in (1, 5, 15, 30, 60, 240, 1440)):
        if span / width <= 48:
            return width
    return timedelta(days=7)


def decision_buckets(rows: Sequence[DecisionRow]) -> list[tuple[datetime, str, int]]:
    """(bucket start, reason or ALLOW, count): decisions over time by blocking reason."""
    if not rows:
        return []
    width = _bucket_width([row.ts for row in rows])
    start = min(row.ts for row in rows)
    counts: Counter[tuple[datetime, str]] = Counter()
    for row in rows:
        bucket = start + width * ((row.ts - start) // width)
        counts[(bucket, row.blocking or row.decision)] += 1
    return sorted((bucket, reason, count) for (bucket, reason), count in counts.items())


def render_charts(series: Series) -> dict[str, str]:
    """Chart id -> inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    def x(times: Sequence[datetime]) -> list[float]:
        return [float(date2num(ts)) for ts in times]  # type: ignore[no-untyped-call]

    charts: dict[str, str] = {}
    buckets = decision_buckets(series.rows)
    figure, axes = plt.subplots(figsize=(10, 3.6))
    reasons = sorted({reason for _, reason, _ in buckets},
                     key=lambda code: (code not in ("ALLOW", "MODIFY"), code))
    times = sorted({bucket for bucket, _, _ in buckets})
    bottom = [0] * len(times)
    index = {bucket: position for position, bucket in enumerate(times)}
    for reason in reasons:
        heights = [0] * len(times)
        for bucket, name, count in buckets:
            if name == reason:
                heights[index[bucket]] = count
        width = (_bucket_width(times) / timedelta(days=1)) * 0.9 if times else 0.01
        axes.bar(x(times), heights, bottom=bottom, width=width, label=reason, align="edge")
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    axes.xaxis_date()
    axes.set_title("Decisions over time by blocking reason")
    axes.set_ylabel("decisions")
    if reasons:
        axes.legend(fontsize=7, ncol=4)
    charts["decisions"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 3.6))
    accounts = sorted({point[1] for point in series.exposure})
    for account in accounts:
        points = [point for point in series.exposure if point[1] == account]
        axes.plot(x([p[0] for p in points]), [float(p[2]) for p in points],
                  label=f"{account} gross", linewidth=1)
        caps = [p for p in points if p[5] is not None]
        if caps:
            axes.plot(x([p[0] for p in caps]), [float(p[5] or 0) for p in caps], linestyle="--",
                      label=f"{account} gross cap", linewidth=1)
    axes.xaxis_date()
    axes.set_title("Gross exposure vs cap (as the gate read it)")
    axes.set_ylabel("exposure")
    if accounts:
        axes.legend(fontsize=7)
    charts["exposure"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 3.6))
    scopes = sorted({(point[1], point[2]) for point in series.rates})
    for scope, key in scopes:
        rate_points = [p for p in series.rates if p[1] == scope and p[2] == key]
        axes.plot(x([p[0] for p in rate_points]),
                  [p[3] / p[4] if p[4] else 0.0 for p in rate_points],
                  label=f"{scope} {key}".strip(), linewidth=0.8, marker=".", markersize=2)
    axes.axhline(1.0, color="red", linestyle="--", linewidth=1, label="throttle")
    axes.xaxis_date()
    axes.set_title("Order rate vs throttle (orders in window / maximum)")
    axes.set_ylabel("utilisation")
    axes.legend(fontsize=7, ncol=3)
    charts["order-rate"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 2.4))
    rank = {"ACTIVE": 0, "REDUCE_ONLY": 1, "HALTED": 2}
    moments = [row.ts for row in series.rows] + [mode[0] for mode in series.modes]
    if moments:
        xs = [min(moments)] + [mode[0] for mode in series.modes] + [max(moments)]
        ys = [rank[series.start_mode]] + [rank[mode[2]] for mode in series.modes]
        ys.append(ys[-1])
        axes.step(x(xs), ys, where="post")
    axes.set_yticks([0, 1, 2], ["ACTIVE", "REDUCE_ONLY", "HALTED"])
    axes.set_ylim(-0.5, 2.5)
    axes.xaxis_date()
    axes.set_title("Mode timeline")
    charts["mode"] = _svg(figure)
    plt.close(figure)
    return charts


# ---------------------------------------------------------------- files


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if value is None else
                             value.isoformat() if isinstance(value, datetime) else value
                             for value in row])


def _table_md(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _table_html(table_id: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row) + "</tr>"
        for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


@dataclass(frozen=True, slots=True)
class EvidencePack:
    directory: Path
    markdown: Path
    html: Path
    csvs: tuple[Path, ...]
    replay: ReplayReport
    summary: Summary
    covered: str  # which records the pack is of ("records 1–N ...")


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{margin-bottom:0}.meta{color:#666}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px;text-align:left}
.proven li{color:#176b2c}.failed li{color:#b00020}.risky li{color:#8a5a00}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}"""


def build_report(journal: Journal, out: Path, *, since: datetime | None = None,
                 until: datetime | None = None,
                 heads: Sequence[tuple[int, str]] = ()) -> EvidencePack:
    """Verify, replay, collect, draw and write the pack into `out` (created if missing).

    The chain is checked first, against the journal's head file and `heads` as `journal
    verify` checks it; a journal that fails is not read further (its records may be the
    damage), and its pack says what failed. Raises JournalError when a checked record
    cannot be read."""
    out.mkdir(parents=True, exist_ok=True)
    chain, note = check_kept_heads(journal, journal.verify(), heads)
    if chain.ok:
        checked = CheckedJournal(journal, chain)
        replay = verify_journal(checked)
        series = collect(checked, DecisionFilter(since=since, until=until))
        later = next(iter(journal.read(chain.records + 1, chain.records + 1)), None)
        covered = (f"records 1\u2013{chain.records:,}" if chain.records else "no records (the "
                   "journal is empty)")
        if later is not None:
            covered += (f"; records from {later.seq:,} on were written after the check and "
                        "are not in this pack")
    else:
        replay = ReplayReport(ok=False, chain=chain)
        series = Series()
        covered = "no record: the journal failed verification, so none was read"
    opening = (f"Mode when the window opens: {series.start_mode}" if chain.ok
               else "Mode: not read (the journal failed verification)")
    summary = summarize(replay, series, series.final_mode)
    summary.notes += [note] if note else []
    summary.notes += chain.notes
    charts = render_charts(series)

    csvs = (out / "decisions.csv", out / "decisions_by_reason.csv", out / "exposure.csv",
            out / "order_rate.csv", out / "mode_timeline.csv")
    export_rows(series.rows, ExportFormat.CSV, csvs[0])
    _write_csv(csvs[1], ("bucket_start", "reason", "count"), decision_buckets(series.rows))
    _write_csv(csvs[2], ("ts", "account", "gross", "net_long", "net_short", "gross_cap",
                         "net_cap"), series.exposure)
    _write_csv(csvs[3], ("ts", "scope", "key", "count", "max_count"), series.rates)
    _write_csv(csvs[4], ("ts", "previous", "mode", "actor", "reasons"), series.modes)

    decided = Counter(row.decision for row in series.rows)
    reasons = Counter(row.blocking for row in series.rows if row.blocking)
    by_strategy = Counter((row.strategy, row.decision) for row in series.rows)
    outcome_rows = [(kind, decided.get(kind, 0)) for kind in ("ALLOW", "MODIFY", "DENY")]
    reason_rows = [(code, count, REGISTRY[code].meaning if code in REGISTRY else "")
                   for code, count in reasons.most_common()]
    strategy_rows = [(strategy, decision, count)
                     for (strategy, decision), count in sorted(by_strategy.items())]
    mode_rows = [(ts.isoformat(), previous, mode, actor, why)
                 for ts, previous, mode, actor, why in series.modes]
    where = redact_url(journal.url)
    window = f"{since.isoformat() if since else 'start'} to {until.isoformat() if until else 'end'}"
    title = "ordergate evidence report"

    md = [f"# {title}", "", f"Journal: `{where}`  ", f"Window: {window}  ",
          f"Covers: {covered}", "", "## Summary", ""]
    for heading, items in (("What was proven", summary.proven), ("What failed", summary.failed),
                           ("What remains risky", summary.risky)):
        md += [f"**{heading}**", ""] + [f"- {item}" for item in items or ["nothing"]] + [""]
    if summary.notes:
        md += ["**Notes**", ""] + [f"- {item}" for item in summary.notes] + [""]
    md += ["## Decisions", "", _table_md(("decision", "count"), outcome_rows), "",
           _table_md(("blocking reason", "count", "meaning"), reason_rows), "",
           _table_md(("strategy", "decision", "count"), strategy_rows), "",
           "## Mode transitions", "", opening, "",
           _table_md(MODE_COLUMNS, mode_rows), "",
           "## Charts", "", "See report.html (inline SVG); the data behind each chart:", ""]
    md += [f"- `{path.name}`" for path in csvs] + [""]
    markdown = out / "report.md"
    markdown.write_text("\n".join(md), encoding="utf-8")

    def bullets(kind: str, values: list[str]) -> str:
        lis = "".join(f"<li>{html.escape(value)}</li>" for value in values or ["nothing"])
        return f'<div class="{kind}"><h3>{kind.capitalize()}</h3><ul>{lis}</ul></div>'

    figures = "".join(
        f'<figure id="chart-{name}">{charts[name]}</figure>' for name in CHARTS)
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><p class=meta>Journal {html.escape(where)} · window "
        f"{html.escape(window)} · covers {html.escape(covered)}</p>"
        f'<section id="summary"><h2>Summary</h2>{bullets("proven", summary.proven)}'
        f'{bullets("failed", summary.failed)}{bullets("risky", summary.risky)}'
        f'{bullets("notes", summary.notes) if summary.notes else ""}</section>'
        f'<section id="charts"><h2>Charts</h2>{figures}</section>'
        f'<section id="tables"><h2>Tables</h2>'
        f'{_table_html("table-outcomes", ("decision", "count"), outcome_rows)}'
        f'{_table_html("table-reasons", ("blocking reason", "count", "meaning"), reason_rows)}'
        f'{_table_html("table-strategies", ("strategy", "decision", "count"), strategy_rows)}'
        f"<p>{html.escape(opening)}</p>"
        f'{_table_html("table-modes", MODE_COLUMNS, mode_rows)}'
        "</section></body></html>"
    )
    page_path = out / "report.html"
    page_path.write_text(page, encoding="utf-8")
    return EvidencePack(directory=out, markdown=markdown, html=page_path, csvs=csvs,
                        replay=replay, summary=summary, covered=covered)
