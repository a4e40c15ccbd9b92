"""``medchain report``: the before/after KPI table of a block range, from chain data alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medchain.cli._context import Context
from medchain.cli._options import write_atomically
from medchain.cli._render import Column

if TYPE_CHECKING:
    from medchain.report import KpiRow, Progress, Report

RECENT_DAYS_DEFAULT = 60  # medchain.report.RECENT_RESULT_DAYS (not imported: the SDK loads on use)


@click.command()
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    required=True,
    metavar="N",
    help="First block of the range (a range starting before the deployment starts at its block).",
)
@click.option(
    "--to-block",
    type=click.IntRange(min=0),
    default=None,
    metavar="M",
    help="Last block of the range [default: the chain's latest block].",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write the report as one self-contained HTML page with charts (opens offline).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the whole report as JSON (as the global --json)."
)
@click.option(
    "--recent-days",
    type=click.IntRange(1, 3650),
    default=RECENT_DAYS_DEFAULT,
    show_default=True,
    help="How recent another institution's result must be for a new examination to repeat it.",
)
@click.pass_obj
def report(
    obj: Context,
    from_block: int,
    to_block: int | None,
    html_path: Path | None,
    as_json: bool,
    recent_days: int,
) -> None:
    """The KPI report of blocks N..M: the published before/after table, computed from the chain.

    Every "after" figure comes from the deployment's events and failed transactions in the range
    (labelled "simulated" on a local development chain), never from a simulator's counters; the
    "before" column is the seed paper's Table 1 (2023), cited. Shows cross-institution record
    retrieval time, duplicate examination rate, unauthorised access (blocked and succeeded), claim
    turnaround, dispute handling, recall reach, records, consents and claims (refused ones by the
    contract's error), and the paper's value models beside eta from the chain's timings.

    \b
    Examples:
      medchain report --from-block 0
      medchain report --from-block 120 --to-block 4800 --html kpi.html
      medchain report --from-block 0 --json > kpi.json
    """
    from medchain.report import build_report

    with _progress(obj) as tell:
        result = build_report(obj.suite, from_block, to_block, window_days=recent_days, progress=tell)
        if html_path is not None:
            tell("writing the HTML page")
            from medchain.report_html import render_html

            write_atomically(html_path, render_html(result))
    data = result.to_dict()
    if obj.field is not None:
        obj.show_one("KPI report", data)
    elif as_json or obj.as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        show_report_tables(obj, result)
    if html_path is not None:
        obj.note(f"HTML report written to {html_path}")


def show_report_tables(obj: Context, result: Report) -> None:
    after = f"After ({result.basis})"
    columns: list[Column[KpiRow]] = [
        Column("Indicator", lambda r: r.indicator),
        Column("Before", lambda r: r.before),
        Column(
            after, lambda r: r.after if r.basis == result.basis else f"{r.after} [{r.basis}]", key="after"
        ),
        Column("Change", lambda r: r.change),
    ]
    obj.show(
        f"KPI report: chain {result.chain_id}, blocks {result.from_block}..{result.to_block} "
        f"({result.span_seconds / 86400:.1f} days of chain time)",
        list(result.rows),
        columns,
    )
    refusals = [
        *result.claims.refused_by_error,
        *((f"other call: {w}", n) for w, n in result.claims.other_refusals),
    ]
    if refusals:
        pair: list[Column[tuple[str, int]]] = [
            Column("Error", lambda p: p[0]),
            Column("Claims", lambda p: p[1]),
        ]
        obj.show(f"Claims refused on chain, by error (read with: {result.revert_source})", refusals, pair)
    v = result.value
    models: list[tuple[str, str]] = [
        ("eta, the paper's inputs (computed)", f"{v.paper_efficiency.eta * 100:.1f} %"),
        ("eta as the paper prints it", f"{v.printed_eta * 100:.1f} %"),
        (f"eta from the chain's timings ({result.basis})", _pct(v.measured.eta if v.measured else None)),
        ("retrieval saving in Table 1 (27 vs 45 min)", f"{v.table1_saving * 100:.1f} %"),
        (f"cost C' ({v.cost_unit})", f"{v.cost.after:.1f} (before {v.cost.before:.1f})"),
        ("cost saving", f"{v.cost.saving_rate * 100:.1f} %"),
    ]
    two: list[Column[tuple[str, str]]] = [Column("Model", lambda m: m[0]), Column("Value", lambda m: m[1])]
    obj.show("Value models (paper section 4)", models, two)
    obj.note(v.eta_remark)
    obj.note(f"Before: {result.sources['before']}.")
    obj.note(f"After: {result.sources['after']}.")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


@contextmanager
def _progress(obj: Context) -> Iterator[Progress]:
    """A spinner on stderr naming the stage the report is at (nothing on stdout)."""
    from rich.console import Console
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _stage: None
        return
    with Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("report", total=None)

        def tell(stage: str) -> None:
            bar.update(task, description=f"report: {stage}")

        yield tell
