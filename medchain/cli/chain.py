"""``medchain chain``: a persistent local Anvil that later commands find by themselves."""

from __future__ import annotations

import click

from medchain import settings
from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT
from medchain.localchain import PersistentChain


@click.group()
def chain() -> None:
    """A local development chain whose state survives `down` and `up` (kept in $MEDCHAIN_HOME/chain)."""


@chain.command("up")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"TCP port [default: ${settings.CHAIN_PORT.name}, else {settings.DEFAULT_CHAIN_PORT}].",
)
@click.option(
    "--block-time", type=click.IntRange(min=1), default=None, help="Mine every N seconds (default: per tx)."
)
@click.pass_obj
def chain_up(obj: Context, port: int | None, block_time: int | None) -> None:
    """Start the local chain in the background (or say where it already runs)."""
    local = PersistentChain(obj.chain_dir)
    record, started = local.up(port or settings.chain_port(), block_time)
    obj.rpc = record.url
    state = "started" if started else "already running"
    _status(obj, local, f"local chain {state} at {record.url}")


@chain.command("down")
@click.pass_obj
def chain_down(obj: Context) -> None:
    """Stop the local chain; its state is saved and `chain up` continues it."""
    local = PersistentChain(obj.chain_dir)
    record = local.down()
    if record is None:
        obj.show_one("local chain", {"running": False, "state": local.state_file})
        return
    obj.show_one("local chain stopped", {"running": False, "port": record.port, "state": local.state_file})


@chain.command("status")
@click.pass_obj
def chain_status(obj: Context) -> None:
    """Is the node at --rpc up, which chain is it, and is the suite deployed on it?"""
    _status(obj, PersistentChain(obj.chain_dir), f"chain at {obj.rpc}")


@chain.command("fund")
@click.argument("account", type=ACCOUNT)
@click.option(
    "--eth", type=click.IntRange(min=1), default=100, show_default=True, help="Balance to set, in ether."
)
@click.pass_obj
def chain_fund(obj: Context, account: str, eth: int) -> None:
    """Give ACCOUNT (an address or keystore name) ether for gas: local development chains only."""
    from medchain.deploy import LOCAL_CHAIN_IDS
    from medchain.errors import ChainError, ConfigurationError

    chain = obj.chain
    if chain.chain_id not in LOCAL_CHAIN_IDS:
        raise ConfigurationError(
            f"chain {chain.chain_id} is not a local development chain; ether cannot be minted"
        )
    wei = eth * 10**18
    answer = chain.w3.provider.make_request("anvil_setBalance", [account, hex(wei)])  # type: ignore[arg-type]
    if "error" in answer:
        raise ChainError(f"the node refused anvil_setBalance: {answer['error'].get('message')}")
    obj.show_one("funded", {"account": account, "balance_eth": eth})


def _status(obj: Context, local: PersistentChain, title: str) -> None:
    from medchain.chain import Chain, connect
    from medchain.errors import MedChainError
    from medchain.suite import Suite

    record = local.record()
    fields: dict[str, object] = {
        "rpc": obj.rpc,
        "local_chain": f"running (pid {record.pid}, port {record.port})" if record else "not running",
        "state_file": local.state_file,
    }
    try:
        chain = Chain(connect(obj.rpc, timeout=5))
    except MedChainError as exc:
        fields["node"] = f"not answering ({exc})"
        obj.show_one(title, fields)
        raise SystemExit(1) from None
    latest = chain.w3.eth.get_block("latest")
    fields |= {
        "chain_id": chain.chain_id,
        "block": int(latest["number"]),
        "block_time": int(latest["timestamp"]),
    }
    manifest = obj.manifest_path(chain.chain_id)
    fields["manifest"] = manifest
    if not manifest.is_file():
        fields["suite"] = "not deployed (run `medchain deploy`)"
    else:
        try:
            Suite.from_manifest(chain.w3, manifest)
            fields["suite"] = "deployed"
        except MedChainError as exc:
            fields["suite"] = f"manifest unusable: {exc}"
    obj.show_one(title, fields)
