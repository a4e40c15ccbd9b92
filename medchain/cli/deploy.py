"""``medchain deploy``: the suite on a chain, and optionally a ready-made local consortium."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from medchain.cli._context import Context
from medchain.cli._options import ADDRESS, DIGEST, RATING

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

    from medchain.devnet import DevRole
    from medchain.manifest import ContractRecord


@click.command()
@click.option(
    "--dev-consortium",
    is_flag=True,
    help="Local chains only: the node's development accounts become the founding regulator and "
    "seven institutions, saved as keystore accounts named by role (hospital-a, hospital-b, "
    "laboratory, pharmacy, manufacturer, distributor, insurer, regulator). Their keys are public.",
)
@click.option("--licence", type=DIGEST, default=None, help="SHA-256 digest (hex) of the founder's licence.")
@click.option("--rating", type=RATING, default=90, show_default=True, help="Founder's credit rating (1-100).")
@click.option(
    "--quorum-bps", type=click.IntRange(0, 10000), default=0, help="Quorum in basis points (0: two thirds)."
)
@click.option(
    "--voting-period",
    type=click.IntRange(min=60),
    default=3 * 24 * 3600,
    show_default=True,
    help="Seconds a proposal stays open.",
)
@click.option(
    "--settlement-token", type=ADDRESS, default=None, help="Stablecoin address (required off local chains)."
)
@click.option("--keep-bootstrap", is_flag=True, help="Leave bootstrap open to admit founding members later.")
@click.pass_obj
def deploy(
    obj: Context,
    dev_consortium: bool,
    licence: bytes | None,
    rating: int,
    quorum_bps: int,
    voting_period: int,
    settlement_token: str | None,
    keep_bootstrap: bool,
) -> None:
    """Deploy the suite; the sender becomes the founding regulator. The manifest is written where
    every other command looks for it ($MEDCHAIN_HOME/deployments/<chain id>.json)."""
    from medchain.errors import ConfigurationError

    chain = obj.chain
    path = obj.manifest_path(chain.chain_id)
    if dev_consortium:
        _deploy_dev(obj, path)
        return
    if licence is None:
        raise click.UsageError("--licence is required (the SHA-256 digest of the founder's licence)")
    from medchain.deploy import SuiteConfig, deploy_suite

    config = SuiteConfig(
        founder_licence=licence,
        founder_rating=rating,
        quorum_bps=quorum_bps,
        voting_period=voting_period,
        settlement_token=settlement_token,
        end_bootstrap=not keep_bootstrap,
    )
    if path.exists() and obj.manifest_option is None:
        obj.note(f"replacing the manifest at {path}")
    try:
        suite = deploy_suite(chain, obj.sender(), config, path)
    except ConfigurationError:
        raise
    _show(obj, suite.deployment.contracts, path, chain.chain_id)


def _deploy_dev(obj: Context, path: object) -> None:
    from pathlib import Path

    from medchain.devnet import deploy_dev_consortium

    assert isinstance(path, Path)
    suite, roles = deploy_dev_consortium(obj.chain, path)
    save_dev_accounts(obj, roles)
    _save_dev_directory(obj, roles)
    rows = [(role.account, address, role.kind.label, role.name) for address, role in roles.items()]
    from medchain.cli._render import Column

    if obj.as_json:
        obj.show_one(
            "deployment",
            {
                "manifest": str(path),
                "chain_id": obj.chain.chain_id,
                "contracts": {n: r.address for n, r in suite.deployment.contracts.items()},
                "accounts": {r[0]: r[1] for r in rows},
            },
        )
        return
    _show(obj, suite.deployment.contracts, path, obj.chain.chain_id)
    obj.show(
        "Development consortium (use the account names with --from)",
        rows,
        [
            Column("account", lambda r: r[0]),
            Column("address", lambda r: r[1]),
            Column("kind", lambda r: r[2]),
            Column("institution", lambda r: r[3]),
        ],
    )


def _save_dev_directory(obj: Context, roles: Mapping[ChecksumAddress, DevRole]) -> None:
    """Gives each development role a demonstration GLN in the directory (entries already there stay)."""
    from medchain.devnet import dev_directory
    from medchain.directory import Directory, default_directory_path

    chain_id = obj.chain.chain_id
    path = default_directory_path(chain_id)
    directory = Directory.load(path, chain_id)
    for entry in dev_directory(chain_id, dict(roles)).entries.values():
        if directory.entry(entry.address) is None:
            directory = directory.with_entry(entry)
    directory.save(path)


def save_dev_accounts(obj: Context, roles: Mapping[ChecksumAddress, DevRole]) -> None:
    """Saves each development role's (public) key as a keystore account named by role."""
    from medchain.keystore import LIGHT_SCRYPT_N, KeystoreError
    from medchain.localchain import dev_private_keys

    keys = dev_private_keys()
    password: str | None = None
    created = []
    for address, role in roles.items():
        if obj.keystore.has(role.account):
            if obj.keystore.address(role.account) != address:
                raise KeystoreError(
                    f"the keystore account {role.account!r} is another key than this chain's {role.name}; "
                    "rename or remove it (or use another MEDCHAIN_HOME)"
                )
            continue
        if password is None:
            password = obj.password("the development consortium", confirm=True)
        obj.keystore.store(role.account, keys[address], password, light=True)
        created.append(role.account)
    if created:
        obj.note(
            f"saved {len(created)} development accounts (public keys, scrypt n={LIGHT_SCRYPT_N}) in "
            f"{obj.keystore.directory}: {', '.join(created)}"
        )


def _show(obj: Context, contracts: Mapping[str, ContractRecord], path: object, chain_id: int) -> None:
    records = dict(contracts)
    if obj.as_json:
        obj.show_one(
            "deployment",
            {
                "manifest": str(path),
                "chain_id": chain_id,
                "contracts": {n: r.address for n, r in records.items()},
            },
        )
        return
    from medchain.cli._render import Column

    obj.show(
        f"Deployed on chain {chain_id} (manifest {path})",
        list(records.items()),
        [Column("contract", lambda r: r[0]), Column("address", lambda r: r[1].address)],
    )
