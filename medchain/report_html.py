"""The KPI report as one self-contained HTML page, its charts drawn by plotly.

Everything the page needs is inside it: plotly.js inline (no network fetch when opened, so it works
on a closed hospital network and from a file), the report's JSON in a ``<script
type="application/json" id="medchain-report">`` element, and the charts' data. Each chart labels
its bars with their values (``%{y:.1f}``), and each table cell shows the report's own text, so that a
reader (and tests/browser/report_page.check.js) can check what the page shows against the JSON.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from medchain.report import DEFINITIONS, TABLE1, TABLE1_SOURCE, Durations, KpiRow, Report

__all__ = ["CHART_IDS", "render_html"]

CHART_IDS = ("chart-table1", "chart-durations", "chart-claims", "chart-access", "chart-value")
"""The page's chart elements, in order."""

_BEFORE, _PAPER, _AFTER = "#8c8c8c", "#5b8def", "#e07b39"
_DAY, _HOUR, _MINUTE = 86400, 3600, 60


def render_html(report: Report) -> str:
    """The report as one HTML page (plotly.js inline; about 5 MB)."""
    from plotly.offline import get_plotlyjs

    data = report.to_dict()
    charts = "\n".join(
        _chart(chart_id, figure)
        for chart_id, figure in zip(
            CHART_IDS,
            (
                _table1_figure(report),
                _durations_figure(report),
                _claims_figure(report),
                _access_figure(report),
                _value_figure(report),
            ),
            strict=True,
        )
    )
    embedded = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    title = f"MedChain KPI report: chain {report.chain_id}, blocks {report.from_block}..{report.to_block}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(title)}</title>
<style>{_CSS}</style>
<script>{get_plotlyjs()}</script>
<script type="application/json" id="medchain-report">{embedded}</script>
</head>
<body>
<h1>MedChain KPI report</h1>
<p class="meta" id="meta">Chain {report.chain_id}, blocks {report.from_block}..{report.to_block}
({_e(_date(report.started_at))} to {_e(_date(report.ended_at))},
{report.span_seconds / _DAY:.1f} days of chain time; deployment at block {report.deploy_block}).
<strong>After</strong>: <span class="basis">{_e(report.basis)}</span>, computed from the chain's events and
failed transactions alone. <strong>Before</strong>: stated model inputs, the seed paper's Table 1 (2023).</p>
<h2>Before and after</h2>
{_kpi_table(report.rows)}
<p class="source">Before: {_e(TABLE1_SOURCE)}. {_table1_note()}</p>
<h2>Charts</h2>
{charts}
<h2>Claims refused on chain, by error</h2>
{_refusals_table(report)}
<h2>Value models (paper section 4)</h2>
{_value_table(report)}
<h2>How each figure is read from the chain</h2>
<dl class="definitions">
{"".join(f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in DEFINITIONS)}
</dl>
</body>
</html>
"""


# ─── Tables ─────────────────────────────────────────────────────────────────────────────────


def _kpi_table(rows: tuple[KpiRow, ...]) -> str:
    body = "\n".join(
        f'<tr data-key="{_e(r.key)}"{" class=sub" if r.indicator.startswith(" ") else ""}>'
        f'<td class="indicator">{_e(r.indicator.strip())}</td>'
        f'<td class="before">{_e(r.before)}</td>'
        f'<td class="after"><span class="value">{_e(r.after)}</span> '
        f'<span class="badge">{_e(r.basis)}</span></td>'
        f'<td class="change">{_e(r.change)}</td></tr>'
        for r in rows
    )
    return (
        '<table id="kpi-table"><thead><tr><th>Indicator</th><th>Before (Table 1, 2023)</th>'
        f"<th>After</th><th>Change</th></tr></thead><tbody>\n{body}\n</tbody></table>"
    )


def _table1_note() -> str:
    return (
        "Table 1 itself reports for 2025: "
        + "; ".join(f"{b.indicator.lower()} {_figure(b.paper_after, b.unit)}" for b in TABLE1)
        + "."
    )


def _refusals_table(report: Report) -> str:
    rows = [(error, count) for error, count in report.claims.refused_by_error]
    rows += [(f"other call: {what}", count) for what, count in report.claims.other_refusals]
    if not rows:
        return '<p id="refusals">No claim was refused in the range.</p>'
    body = "".join(f'<tr><td class="error">{_e(e)}</td><td class="count">{n}</td></tr>' for e, n in rows)
    source = report.revert_source or "none"
    return (
        '<table id="refusals"><thead><tr><th>Error</th><th>Claims</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
        f'<p class="source">Errors read with: {_e(source)} (see "Claims refused by reason" below).</p>'
    )


def _value_table(report: Report) -> str:
    v = report.value
    measured = f"{v.measured.eta * 100:.1f} %" if v.measured is not None else "—"
    rows = [
        (
            "eta-computed",
            "Efficiency gain eta, paper's inputs (alpha 0.6, 0.85, 0.7, 0.5)",
            f"{v.paper_efficiency.eta * 100:.1f} %",
        ),
        ("eta-printed", "Efficiency gain eta as the paper prints it", f"{v.printed_eta * 100:.1f} %"),
        ("eta-measured", f"Efficiency gain eta from the chain's timings ({report.basis})", measured),
        (
            "table1-saving",
            "Retrieval saving in the paper's own Table 1 (27 vs 45 min)",
            f"{v.table1_saving * 100:.1f} %",
        ),
        (
            "cost-after",
            f"Cost C' = C1(1+beta) + C2(1-gamma) + C3(1-delta), {v.cost_unit}",
            f"{v.cost.after:.1f}",
        ),
        ("cost-before", f"Cost before C = C1 + C2 + C3, {v.cost_unit}", f"{v.cost.before:.1f}"),
        ("cost-saving", "Cost saving (C - C') / C", f"{v.cost.saving_rate * 100:.1f} %"),
    ]
    body = "".join(
        f'<tr data-key="{key}"><td>{_e(label)}</td><td class="value">{_e(value)}</td></tr>'
        for key, label, value in rows
    )
    return (
        f'<table id="value-table"><tbody>{body}</tbody></table>'
        f'<p class="remark">{_e(v.eta_remark)}</p><p class="remark">{_e(v.measured_note)}</p>'
    )


# ─── Charts ─────────────────────────────────────────────────────────────────────────────────


def _chart(chart_id: str, figure: Any) -> str:
    import plotly.io as pio

    div = pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=chart_id,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<section class="chart">{div}</section>'


def _bar(names: list[str], values: list[float | None], colours: list[str], **extra: Any) -> Any:
    import plotly.graph_objects as go

    return go.Bar(
        x=names,
        y=values,
        marker_color=colours,
        texttemplate="%{y:.1f}",
        textposition="outside",
        cliponaxis=False,
        showlegend=False,
        **extra,
    )


def _row(report: Report, key: str) -> KpiRow:
    return next(r for r in report.rows if r.key == key)


def _table1_figure(report: Report) -> Any:
    """Table 1's indicators that the chain measures: 2023, 2025 (both the paper's) and ours."""
    from plotly.subplots import make_subplots

    panels = (
        ("retrieval", "Record retrieval time (min)", 1.0),
        ("duplicate_exams", "Duplicate examinations (%)", 100.0),
        ("unauthorised", "Unauthorised access (per quarter)", 1.0),
        ("disputes", "Dispute handling (days)", 1.0),
    )
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for _k, title, _s in panels])
    for column, (key, _title, scale) in enumerate(panels, start=1):
        row = _row(report, key)
        values = [
            _scaled(row.before_value, scale),
            _scaled(row.paper_after_value, scale),
            _scaled(row.after_value, scale),
        ]
        names = ["2023 (Table 1)", "2025 (Table 1)", report.basis]
        figure.add_trace(_bar(names, values, [_BEFORE, _PAPER, _AFTER], name=key), row=1, col=column)
    figure.update_layout(
        title="Before and after: the paper's Table 1 beside the chain", height=380, margin={"t": 90}
    )
    return figure


def _durations_figure(report: Report) -> Any:
    """Median and p90 of each measured duration."""
    from plotly.subplots import make_subplots

    panels = (
        ("Retrieval (min)", report.retrieval.times, _MINUTE),
        ("Claim turnaround, all (h)", report.claims.turnaround, _HOUR),
        ("Paid after review (days)", report.claims.turnaround_reviewed, _DAY),
        ("Break-glass review (days)", report.disputes.break_glass_review, _DAY),
        ("Appeal to decision (days)", report.disputes.appeal_decision, _DAY),
    )
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for title, _d, _s in panels])
    for column, (title, durations, unit) in enumerate(panels, start=1):
        figure.add_trace(
            _bar(["median", "p90"], _median_p90(durations, unit), [_AFTER, "#b85c1f"], name=title),
            row=1,
            col=column,
        )
    figure.update_layout(title=f"Durations measured on chain ({report.basis})", height=380, margin={"t": 90})
    return figure


def _claims_figure(report: Report) -> Any:
    import plotly.graph_objects as go

    c = report.claims
    names = [
        "paid at submission",
        "paid after review",
        "denied",
        "appealed",
        *(e for e, _n in c.refused_by_error),
    ]
    values: list[float | None] = [
        float(c.paid_at_submission),
        float(c.paid - c.paid_at_submission),
        float(c.denied),
        float(c.appealed),
        *(float(n) for _e, n in c.refused_by_error),
    ]
    colours = [_AFTER] * 4 + ["#c0392b"] * len(c.refused_by_error)
    figure = go.Figure(_bar(names, values, colours, name="claims"))
    figure.update_layout(
        title=f"Claims in the range ({report.basis}); red: refused on chain, by error", height=400
    )
    return figure


def _access_figure(report: Report) -> Any:
    import plotly.graph_objects as go

    u = report.unauthorised
    names = [
        "audited reads",
        "break-glass reads",
        "refused (recorded)",
        "refused (reverted)",
        "without a basis",
        "disputed sessions",
    ]
    values: list[float | None] = [
        float(u.reads),
        float(u.break_glass_reads),
        float(u.blocked_recorded),
        float(u.blocked_reverted),
        float(u.succeeded),
        float(u.disputed_sessions),
    ]
    colours = [_AFTER, _AFTER, "#2e8b57", "#2e8b57", "#c0392b", "#c0392b"]
    figure = go.Figure(_bar(names, values, colours, name="access"))
    figure.update_layout(title=f"Record access in the range ({report.basis})", height=400)
    return figure


def _value_figure(report: Report) -> Any:
    from plotly.subplots import make_subplots

    v = report.value
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=["Efficiency gain eta (%)", f"Data-management cost ({v.cost_unit})"]
    )
    names = [
        "paper, printed",
        "paper inputs, computed",
        f"chain timings ({report.basis})",
        "Table 1 retrieval",
    ]
    values = [
        v.printed_eta * 100,
        v.paper_efficiency.eta * 100,
        v.measured.eta * 100 if v.measured is not None else None,
        v.table1_saving * 100,
    ]
    figure.add_trace(_bar(names, values, [_BEFORE, _PAPER, _AFTER, _BEFORE], name="eta"), row=1, col=1)
    figure.add_trace(
        _bar(["C (before)", "C' (after)"], [v.cost.before, v.cost.after], [_BEFORE, _PAPER], name="cost"),
        row=1,
        col=2,
    )
    figure.update_layout(title="Value models (paper section 4)", height=400, margin={"t": 90})
    return figure


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _median_p90(durations: Durations, unit: int) -> list[float | None]:
    return [_scaled(durations.median, 1 / unit), _scaled(durations.p90, 1 / unit)]


# ─── Helpers ────────────────────────────────────────────────────────────────────────────────


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure(value: float, unit: str) -> str:
    return f"{value * 100:g} %" if unit == "share" else f"{value:g} {unit}"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.meta, .source, .remark { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .35rem .5rem; text-align: left; vertical-align: top; }
tr.sub td.indicator { padding-left: 1.6rem; color: #444; }
.badge { font-size: .72rem; background: #fbe3d2; color: #8a3d0c; border-radius: .6rem;
         padding: .05rem .45rem; }
.basis { font-weight: 600; }
.chart { margin: 1rem 0; }
dl.definitions dt { font-weight: 600; margin-top: .6rem; }
dl.definitions dd { margin-left: 1rem; color: #444; }
"""
