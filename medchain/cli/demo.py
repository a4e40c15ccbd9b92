"""``medchain demo``: the end-to-end scenario on a local chain, optionally kept for exploring."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from medchain.cli._context import Context


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
@click.pass_obj
def demo(obj: Context, keep: bool, chain_kind: str, use_rpc: bool) -> None:
    """Deploy the suite on a local chain and walk through consent, records, drugs and claims."""
    from rich.console import Console

    from medchain import demo as scenario
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
        scenario.run(chain, manifest, console, store)
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
        scenario.run(Chain(connect(obj.rpc)), manifest, console, store)
        return
    with LocalChain(chain_kind) as w3:
        console.print(f"started {chain_kind} on {w3.provider.endpoint_uri}")  # type: ignore[attr-defined]
        scenario.run(Chain(w3, Artifacts()), manifest, console, store)
    console.print("[green]demo finished[/green]; the local chain was stopped (use --keep to keep one)")


def _port() -> int:
    from medchain import settings

    return settings.chain_port()
