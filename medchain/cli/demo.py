"""``medchain demo``: the end-to-end scenario on a local chain, optionally kept for exploring."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medchain.cli._context import Context

if TYPE_CHECKING:
    from rich.console import Console

    from medchain.chain import Chain


@click.command()
@click.option(
    "--keep",
    is_flag=True,
    help="Run on the persistent local chain (`medchain chain up`), leave it running with the manifest "
    "where the other commands find it, and save the institutions as keystore accounts.",
)
@click.option(
    "--chain",
    "chain_kind",
    type=click.Choice(["anvil", "ganache"]),
    default="anvil",
    show_default=True,
    help="Throw-away local chain to start (without --keep).",
)
@click.option("--use-rpc", is_flag=True, help="Run against the node at --rpc instead of starting a chain.")
@click.option(
    "--scenario/--no-scenario",
    default=True,
    show_default=True,
    help="After the walk-through, run the regional-alliance scenario at its default size and print the "
    "KPI report (Anvil only).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reports/kpi-report.html"),
    show_default=True,
    help="Where the scenario's KPI report page is written.",
)
@click.pass_obj
def demo(obj: Context, keep: bool, chain_kind: str, use_rpc: bool, scenario: bool, html_path: Path) -> None:
    """Walk through consent, records, drugs and claims on a local chain, then run the regional
    alliance scenario and print its KPI report (before/after, from chain data) and value models."""
    from rich.console import Console

    from medchain import demo as walkthrough
    from medchain.artifacts import Artifacts
    from medchain.chain import Chain, connect
    from medchain.localchain import LocalChain, PersistentChain

    console = Console()
    store = obj.home / "store"
    if keep:
        from medchain import devnet
        from medchain.cli.deploy import save_dev_accounts

        record, started = PersistentChain(obj.chain_dir).up(_port())
        console.print(f"local chain {'started' if started else 'already running'} at {record.url}")
        chain = Chain(connect(record.url))
        manifest = obj.manifest_path(chain.chain_id)
        walkthrough.run(chain, manifest, console, store)
        if scenario:
            _scenario_and_report(obj, chain, console, html_path)
        accounts = devnet.dev_accounts(chain)
        roles = {accounts[0]: devnet.REGULATOR} | dict(zip(accounts[1:], devnet.ROLES, strict=False))
        save_dev_accounts(obj, roles)
        console.print(
            f"[green]demo finished[/green]; the chain keeps running at {record.url}, manifest {manifest}"
        )
        console.print("try next:")
        for line in (
            "medchain institution list",
            "medchain --from insurer claim report 1",
            "medchain --from hospital-a ehr records <patient address from the demo>",
            "medchain chain down        # stops it; `medchain chain up` continues the same chain",
        ):
            console.print(f"  {line}", highlight=False)
        return
    manifest = Path(tempfile.mkdtemp(prefix="medchain-demo-")) / "manifest.json"
    if use_rpc:
        chain = Chain(connect(obj.rpc))
        walkthrough.run(chain, manifest, console, store)
        if scenario:
            _scenario_and_report(obj, chain, console, html_path)
        return
    with LocalChain(chain_kind) as w3:
        console.print(f"started {chain_kind} on {w3.provider.endpoint_uri}")  # type: ignore[attr-defined]
        chain = Chain(w3, Artifacts())
        walkthrough.run(chain, manifest, console, store)
        if scenario and chain_kind == "anvil":
            _scenario_and_report(obj, chain, console, html_path)
        elif scenario:
            console.print("(the scenario needs Anvil's mining controls; skipped on Ganache)")
    console.print("[green]demo finished[/green]; the local chain was stopped (use --keep to keep one)")


def _scenario_and_report(obj: Context, chain: Chain, console: Console, html_path: Path) -> None:
    """The regional-alliance scenario at its default size on the same chain, then the KPI report
    computed from that deployment's chain data (from its first simulated day), its value models,
    and the HTML page."""
    from medchain.cli._options import write_atomically
    from medchain.cli.report import show_report_tables
    from medchain.report import build_report
    from medchain.report_html import render_html
    from medchain.scenario import ProgressBars, ScenarioConfig, run_scenario
    from medchain.suite import Suite

    config = ScenarioConfig()
    console.rule(
        f"[bold]14. A regional alliance at scale: {config.hospitals} tertiary hospitals, {config.clinics} "
        f"community clinics, {config.specialists} specialist hospitals, {config.patients} patients, "
        f"{config.days} days"
    )
    manifest = obj.home / "deployments" / f"{chain.chain_id}-scenario.json"
    work_dir = obj.home / "scenario" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    with ProgressBars() as bars:
        result = run_scenario(chain.w3, config, manifest, work_dir, bars)
    console.print(
        f"{result.transactions:,} transactions ({result.refused_transactions} refused on purpose) in "
        f"{result.blocks:,} blocks, {result.wall_seconds:.0f} s ({result.transactions_per_second:.0f} tx/s); "
        f"manifest {manifest}",
        highlight=False,
    )
    console.rule("[bold]15. The KPI report, from the chain alone")
    report = build_report(Suite.from_manifest(chain.w3, manifest), result.first_day_block, result.to_block)
    show_report_tables(obj, report)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(html_path, render_html(report))
    console.print(f"HTML report (charts, self-contained): {html_path.resolve()}", highlight=False)


def _port() -> int:
    from medchain import settings

    return settings.chain_port()
