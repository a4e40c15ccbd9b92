"""``medchain institution``: consortium membership and credit-weighted governance."""

from __future__ import annotations

from dataclasses import asdict

import click

from medchain.cli._context import Context
from medchain.cli._options import ACCOUNT, DIGEST, KIND, RATING
from medchain.cli._render import Column
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
