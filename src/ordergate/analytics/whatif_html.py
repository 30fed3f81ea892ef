"""The what-if diff as a standalone HTML page with inline SVG charts: the equity and gross
exposure paths of the original day and of the what-if, and the changed decisions by reason,
symbol and strategy."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ordergate.analytics.whatif import PathPoint, WhatIfReport
from ordergate.evidence.report import _STYLE, _table_html


def _svg_stable(figure: Any) -> str:
    """The figure as SVG that is the same bytes on every run: no creation date, and the ids
    matplotlib draws at random derived from a fixed salt."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "ordergate-whatif"}):
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _path_chart(title: str, before: Sequence[PathPoint], after: Sequence[PathPoint],
                value: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    def x(times: Sequence[datetime]) -> list[float]:
        return [float(date2num(ts)) for ts in times]  # type: ignore[no-untyped-call]

    figure, axes = plt.subplots(figsize=(10, 3.4))
    for label, points in (("original", before), ("what-if", after)):
        axes.plot(x([point.ts for point in points]),
                  [float(getattr(point, value)) for point in points], label=label, linewidth=1)
    axes.xaxis_date()
    axes.set_title(title)
    axes.legend(fontsize=8)
    svg = _svg_stable(figure)
    plt.close(figure)
    return svg


def _bar_chart(title: str, counts: dict[str, int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 3.0))
    axes.bar(list(counts), list(counts.values()))
    axes.set_title(title)
    svg = _svg_stable(figure)
    plt.close(figure)
    return svg


def _paragraph(text: str, css: str = "") -> str:
    return f"<p{f' class={css}' if css else ''}>{html.escape(text)}</p>"


def render_html(report: WhatIfReport) -> str:
    """The page: what was tried against what, its warnings, the summary counts, the final
    state figures, the charts and the changed decisions. A section with nothing to show says
    so in a line instead of an empty chart or a table of headers only."""
    title = f"ordergate what-if: {report.policy_name}"
    originals = ", ".join(report.original_policies) or "none"
    head = (_paragraph(f"journal {report.journal} · original policies: {originals} · "
                       f"what-if policy: {report.policy_name} {report.policy_hash}", "meta")
            + _paragraph(f"broker: {report.broker}", "meta"))
    warnings = "".join(f'<p class="warning"><strong>warning:</strong> '
                       f"{html.escape(warning)}</p>" for warning in report.warnings)
    summary_text = (f"{report.inputs:,} journaled inputs re-fed ({report.batches:,} source "
                    f"batches); {report.decisions:,} decisions, {report.changed_words}")
    if report.changed:
        tables = "".join((
            _table_html("table-by-change", ("change", "count"), list(report.by_change.items())),
            _table_html("table-by-reason", ("reason", "count"), list(report.by_reason.items())),
            _table_html("table-by-symbol", ("symbol", "count"), list(report.by_symbol.items())),
            _table_html("table-by-strategy", ("strategy", "count"),
                        list(report.by_strategy.items())),
        ))
    elif report.decisions:
        tables = _paragraph("Nothing changed: every decision of the journal is decided the "
                            "same under this policy.")
    else:
        tables = _paragraph("The journal holds no decision to compare.")
    path = report.path
    if path is not None:
        state = _table_html("table-state", ("", "original", "what-if"), [
            ("final equity", path.final_equity_before, path.final_equity_after),
            ("lowest daily PnL", path.min_daily_pnl_before, path.min_daily_pnl_after),
            ("peak gross exposure", path.max_gross_before, path.max_gross_after),
            ("final gross exposure", path.final_gross_before, path.final_gross_after),
            ("final mode", report.final_mode_before, report.final_mode_after),
        ])
    else:
        state = _paragraph("No state path: the journal holds no source batch to re-feed, so "
                           "there is no equity, PnL, exposure or mode to compare.")
    charts: dict[str, str] = {}
    if report.path_before or report.path_after:
        charts["equity"] = _path_chart("Equity: original vs what-if", report.path_before,
                                       report.path_after, "equity")
        charts["exposure"] = _path_chart("Gross exposure: original vs what-if",
                                         report.path_before, report.path_after,
                                         "gross_exposure")
    if report.by_reason:
        charts["reasons"] = _bar_chart("Changed decisions by reason", report.by_reason)
    figures = "".join(f'<figure id="chart-{name}">{svg}</figure>'
                      for name, svg in charts.items())
    transitions: list[Sequence[Any]] = [
        (label, item.ts.isoformat(), item.previous, item.mode, item.why)
        for label, items in (("appears", report.transitions_appeared),
                             ("vanishes", report.transitions_vanished)) for item in items]
    details = (
        _table_html("table-transitions", ("transition", "ts", "from", "to", "why"),
                    transitions) if transitions
        else _paragraph("No mode transition appears or vanishes."))
    if report.changed:
        details += _table_html(
            "table-changed", ("intent", "strategy", "symbol", "before", "after"),
            [(item.intent_id, item.strategy, item.symbol, item.before.label, item.after.label)
             for item in report.changed])
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
        f"{html.escape(title)}</title><style>{_STYLE}{_WARNING_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{head}{warnings}"
        f'<section id="summary">{_paragraph(summary_text)}{tables}</section>'
        f'<section id="state">{state}</section>'
        f'<section id="charts">{figures}</section>'
        f'<section id="tables">{details}</section></body></html>'
    )


_WARNING_STYLE = ".warning{color:#b00020}"
