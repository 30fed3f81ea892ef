"""The what-if diff as a standalone HTML page with inline SVG charts: the equity and gross
exposure paths of the original day and of the what-if, and the changed decisions by reason,
symbol and strategy."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ordergate.analytics.whatif import PathPoint, WhatIfReport
from ordergate.evidence.report import _STYLE, _svg, _table_html


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
    svg = _svg(figure)
    plt.close(figure)
    return svg


def _bar_chart(title: str, counts: dict[str, int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 3.0))
    axes.bar(list(counts), list(counts.values()))
    axes.set_title(title)
    svg = _svg(figure)
    plt.close(figure)
    return svg


def render_html(report: WhatIfReport) -> str:
    title = f"ordergate what-if: {report.policy_name}"
    changed_rows: list[Sequence[Any]] = [
        (item.intent_id, item.strategy, item.symbol, item.before.label, item.after.label)
        for item in report.changed]
    transitions: list[Sequence[Any]] = [
        (label, item.ts.isoformat(), item.previous, item.mode, item.reasons)
        for label, items in (("appears", report.transitions_appeared),
                             ("vanishes", report.transitions_vanished)) for item in items]
    charts = {
        "equity": _path_chart("Equity: original vs what-if", report.path_before,
                              report.path_after, "equity"),
        "exposure": _path_chart("Gross exposure: original vs what-if", report.path_before,
                                report.path_after, "gross_exposure"),
        "reasons": _bar_chart("Changed decisions by reason", report.by_reason),
    }
    figures = "".join(f'<figure id="chart-{name}">{svg}</figure>'
                      for name, svg in charts.items())
    summary = (f"{report.decisions:,} decisions, {len(report.changed):,} change under policy "
               f"{report.policy_hash}; final mode {report.final_mode_before} → "
               f"{report.final_mode_after}")
    tables = "".join((
        _table_html("table-by-change", ("change", "count"), list(report.by_change.items())),
        _table_html("table-by-reason", ("reason", "count"), list(report.by_reason.items())),
        _table_html("table-by-symbol", ("symbol", "count"), list(report.by_symbol.items())),
        _table_html("table-by-strategy", ("strategy", "count"),
                    list(report.by_strategy.items())),
    ))
    details = "".join((
        _table_html("table-transitions", ("transition", "ts", "from", "to", "reasons"),
                    transitions),
        _table_html("table-changed", ("intent", "strategy", "symbol", "before", "after"),
                    changed_rows),
    ))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=meta>{html.escape(report.journal)} · "
        f"{html.escape(report.broker)}</p>"
        f'<section id="summary"><p>{html.escape(summary)}</p>{tables}</section>'
        f'<section id="charts">{figures}</section>'
        f'<section id="tables">{details}</section></body></html>'
    )
