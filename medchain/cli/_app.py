"""Root group, global options and the one place expected failures become one line."""

from __future__ import annotations

import os
import sys
from importlib import import_module
from pathlib import Path

import click

from medchain import settings
from medchain.cli._context import Context

# name -> (module, attribute, one-line help). The help is repeated here so that listing the
# groups (``medchain --help``) does not import them.
GROUPS: dict[str, tuple[str, str, str]] = {
    "chain": ("medchain.cli.chain", "chain", "A persistent local chain: up, down, status, fund."),
    "account": ("medchain.cli.account", "account", "Encrypted keystore accounts: new, import, list."),
    "deploy": (
        "medchain.cli.deploy",
        "deploy",
        "Deploy the suite; the sender becomes the founding regulator.",
    ),
    "institution": ("medchain.cli.institution", "institution", "Consortium membership and governance."),
    "patient": ("medchain.cli.patient", "patient", "A patient's consents, guardians and access history."),
    "ehr": ("medchain.cli.ehr", "ehr", "Health records: anchor, batch, read, amend, retract, break-glass."),
    "drug": ("medchain.cli.drug", "drug", "Drug provenance: products, batches, custody, dispensing, recall."),
    "claim": (
        "medchain.cli.claim",
        "claim",
        "Insurance: plans, enrolment, claims, review, payment, reports.",
    ),
    "gateway": ("medchain.cli.gateway", "gateway", "A custodian's gateway that releases record keys."),
    "report": ("medchain.cli.report", "report", "Before/after KPI report of a block range, from the chain."),
    "demo": ("medchain.cli.demo", "demo", "Start a local chain, deploy and run the end-to-end scenario."),
    "scenario": ("medchain.cli.scenario", "scenario", "A seeded regional-alliance scenario, local chain."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module, attribute, _help = GROUPS[cmd_name]
        command: click.Command = getattr(import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_m, _a, short) in GROUPS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--rpc",
    default=None,
    metavar="URL",
    help=f"JSON-RPC URL of the node [default: ${settings.RPC.name}, else the chain `medchain chain up` "
    "started, else http://127.0.0.1:8545].",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Deployment manifest [default: ${settings.MANIFEST.name}, else "
    "$MEDCHAIN_HOME/deployments/<chain id>.json].",
)
@click.option(
    "--from",
    "sender",
    default=None,
    metavar="ACCOUNT",
    help="Who signs: a keystore account name (see `medchain account list`) or an address the node "
    f"unlocks (local chains) [default: ${settings.PRIVATE_KEY.name}].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--field",
    default=None,
    metavar="NAME",
    help="Print only this field of the result (its --json name), one value per line: for scripts, "
    "e.g. RECORD=$(medchain --field record ehr anchor ...).",
)
@click.version_option(package_name="medchain", prog_name="medchain")
@click.pass_context
def cli(
    ctx: click.Context,
    rpc: str | None,
    manifest: Path | None,
    sender: str | None,
    as_json: bool,
    field: str | None,
) -> None:
    """MedChain: patient consent, health-record index, drug provenance and insurance claims on any
    EVM chain.

    \b
    Start here:
      medchain chain up                 a local chain whose state survives restarts
      medchain deploy --dev-consortium  the suite, with a ready-made local consortium
      medchain account new alice        an encrypted key for a patient
    """
    ctx.obj = Context(rpc, manifest, sender, as_json, field)


def main() -> None:
    """Entry point: expected failures print one line, no traceback, and exit non-zero."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        where = f" (try '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from medchain.errors import MedChainError

        if os.environ.get(settings.DEBUG.name):
            raise
        if isinstance(exc, MedChainError):
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        if isinstance(exc, ValueError | TypeError):
            # Input that slipped past the option checks and was refused while encoding a call.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(f"error: invalid input: {first}", err=True)
            sys.exit(2)
        if isinstance(exc, OSError):
            click.echo(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or 'I/O'})", err=True)
            sys.exit(1)
        click.echo(
            f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            f"(set {settings.DEBUG.name}=1 to see where)",
            err=True,
        )
        sys.exit(1)
