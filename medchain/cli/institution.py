"""``medchain institution``: consortium membership and credit-weighted governance."""

from __future__ import annotations

from dataclasses import asdict

import click

from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT, DIGEST, KIND, RATING
from medchain.cli._render import Column
from medchain.directory import DirectoryEntry
from medchain.registry import Member
from medchain.types import GovernanceAction, Kind

MEMBER_COLUMNS: list[Column[Member]] = [
    Column("address", lambda m: m.address),
    Column("kind", lambda m: m.kind),
    Column("status", lambda m: m.status),
    Column("rating", lambda m: m.rating),
    Column("weight", lambda m: m.weight),
    Column("since", lambda m: m.since),
]


@click.group()
def institution() -> None:
    """Consortium membership and governance (proposals pass by credit-weighted vote)."""


@institution.command("list")
@click.pass_obj
def institution_list(obj: Context) -> None:
    """List every member with kind, status, rating and weight."""
    obj.show("Consortium members", obj.suite.registry.members(), MEMBER_COLUMNS)


@institution.command("show")
@click.argument("account", type=ACCOUNT)
@click.pass_obj
def institution_show(obj: Context, account: str) -> None:
    """One member's record: kind, status, rating, weight, licence digest, open proposals about it."""
    registry = obj.suite.registry
    member = registry.member(account)
    fields = asdict(member)
    fields["open_proposals"] = {
        action.name.lower(): pid
        for action in GovernanceAction
        if (pid := registry.open_proposal(account, action))
    }
    obj.show_one(f"Member {account}", fields)


@institution.command("admit")
@click.argument("account", type=ACCOUNT)
@click.option(
    "--kind",
    type=KIND,
    required=True,
    help="hospital, community-clinic, specialist-hospital, laboratory, pharmacy, manufacturer, "
    "distributor, insurer or regulator.",
)
@click.option("--rating", required=True, type=RATING, help="Credit rating 1-100.")
@click.option("--licence", required=True, type=DIGEST, help="SHA-256 digest (hex) of the licence.")
@click.pass_obj
def institution_admit(obj: Context, account: str, kind: Kind, rating: int, licence: bytes) -> None:
    """Propose admitting ACCOUNT (the sender's vote counts as yes)."""
    pid = obj.suite.registry.propose_admission(obj.sender(), account, kind, rating, licence)
    _show_proposal(obj, pid)


@institution.command("propose")
@click.argument("action", type=click.Choice(["suspend", "reinstate", "remove", "change-rating"]))
@click.argument("member", type=ACCOUNT)
@click.option(
    "--rating", type=click.IntRange(0, 100), default=0, help="New rating (1-100) for change-rating."
)
@click.pass_obj
def institution_propose(obj: Context, action: str, member: str, rating: int) -> None:
    """Propose to suspend, reinstate, remove or re-rate MEMBER."""
    chosen = GovernanceAction[action.upper().replace("-", "_")]
    pid = obj.suite.registry.propose_change(obj.sender(), member, chosen, rating)
    _show_proposal(obj, pid)


@institution.command("vote")
@click.argument("proposal_id", type=click.IntRange(min=1))
@click.argument("choice", type=click.Choice(["yes", "no"]))
@click.pass_obj
def institution_vote(obj: Context, proposal_id: int, choice: str) -> None:
    """Vote yes or no on PROPOSAL_ID with the sender's credit weight."""
    obj.suite.registry.vote(obj.sender(), proposal_id, choice == "yes")
    _show_proposal(obj, proposal_id)


def _show_proposal(obj: Context, proposal_id: int) -> None:
    from medchain.errors import MedChainError

    if proposal_id > obj.suite.registry.proposal_count():
        raise MedChainError(f"no proposal {proposal_id} on this deployment")
    obj.show_one(f"Proposal {proposal_id}", asdict(obj.suite.registry.proposal(proposal_id)))


# ─── Directory: each member's GS1 identity (off chain) ──────────────────────────────────────

DIRECTORY_COLUMNS: list[Column[DirectoryEntry]] = [
    Column("address", lambda e: e.address),
    Column("name", lambda e: e.name),
    Column("gln", lambda e: e.gln),
    Column("company_prefix", lambda e: e.company_prefix),
]


@institution.group("directory")
def institution_directory() -> None:
    """Each member's GS1 identity (GLN, GS1 Company Prefix), which GS1 exports name it by.

    Kept off chain beside the deployment manifest, in $MEDCHAIN_HOME/directory/<chain id>.json
    (a GLN is public master data; correcting one needs no governance vote).
    """


@institution_directory.command("set")
@click.argument("account", type=ACCOUNT)
@click.option("--gln", required=True, help="The member's GLN: 13 digits, GS1 check digit verified.")
@click.option(
    "--company-prefix",
    required=True,
    help="The member's GS1 Company Prefix (6 to 12 digits; its GLN and its GTINs start with it).",
)
@click.option("--name", default="", help="The member's name, as GS1 master data would give it.")
@click.pass_obj
def directory_set(obj: Context, account: str, gln: str, company_prefix: str, name: str) -> None:
    """Record ACCOUNT's GLN and GS1 Company Prefix in the deployment's directory.

    \b
    Example:
      medchain institution directory set manufacturer --gln 9520005000013 --company-prefix 9520005
    """
    from medchain.directory import Directory, DirectoryEntry, default_directory_path
    from medchain.gs1 import GS1Error

    try:
        entry = DirectoryEntry(account, gln, company_prefix, name)
    except GS1Error as exc:
        raise click.BadParameter(str(exc), param_hint="--gln/--company-prefix") from None
    chain_id = obj.chain.chain_id
    path = default_directory_path(chain_id)
    Directory.load(path, chain_id).with_entry(entry).save(path)
    obj.show_one(f"Directory entry of {entry.address}", {**entry.as_json(), "address": entry.address})


@institution_directory.command("show")
@click.argument("account", type=ACCOUNT, required=False)
@click.pass_obj
def directory_show(obj: Context, account: str | None) -> None:
    """List the directory, or show ACCOUNT's entry."""
    from medchain.directory import Directory, default_directory_path
    from medchain.errors import MedChainError

    chain_id = obj.chain.chain_id
    directory = Directory.load(default_directory_path(chain_id), chain_id)
    if account is None:
        obj.show(f"Directory of chain {chain_id}", list(directory.entries.values()), DIRECTORY_COLUMNS)
        return
    entry = directory.entry(account)
    if entry is None:
        raise MedChainError(f"the directory of chain {chain_id} has no entry for {account}")
    obj.show_one(f"Directory entry of {entry.address}", {**entry.as_json(), "address": entry.address})
