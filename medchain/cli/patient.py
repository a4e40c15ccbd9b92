"""``medchain patient``: (being ported from the single-file CLI; see /work/tmp/old_cli.py)."""

from __future__ import annotations

import click


@click.group()
def patient() -> None:
    """(commands being added)"""


@patient.command("sign-enrolment")
@click.argument("plan_id", type=click.IntRange(1, 2**32 - 1))
@click.option(
    "--start",
    default="now",
    show_default=True,
    metavar="TIME",
    help="When coverage starts: now, YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC), Unix seconds, or +30d / -1d.",
)
@click.option(
    "--end",
    required=True,
    metavar="TIME",
    help="When coverage ends (same forms as --start, e.g. +365d or 2027-01-01).",
)
@click.option(
    "--valid-for",
    "valid_days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="Days the insurer has to submit the signature.",
)
@click.option(
    "--nonce",
    type=click.IntRange(min=0),
    default=None,
    help="Your enrolment nonce [default: read from the chain]; needed when no node answers.",
)
@click.option(
    "--chain-id",
    type=click.IntRange(min=1),
    default=None,
    help="Offline: which deployment's manifest to sign for, when $MEDCHAIN_HOME has several.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the signature file for the insurer.",
)
@click.pass_context
def patient_sign_enrolment(
    ctx: click.Context,
    plan_id: int,
    start: str,
    end: str,
    valid_days: int,
    nonce: int | None,
    chain_id: int | None,
    output: str,
) -> None:
    """Sign your agreement to join insurance plan PLAN_ID for a coverage period (an EIP-712 Enrol
    message) and write it to a file the insurer submits with `medchain claim enrol FILE`. No transaction,
    no gas: the sender must be a local key (--from a keystore account).

    Works offline: the domain comes from the deployment manifest and the nonce from --nonce when
    no node answers (otherwise both are read from the chain).

    \b
    Example:
      medchain --from alice patient sign-enrolment 1 --end +365d -o alice-plan1.json
    """
    from medchain.cli.claim import sign_enrolment

    sign_enrolment(ctx.obj, plan_id, start, end, valid_days, nonce, chain_id, output)
