"""``medchain scenario``: the seeded regional-alliance scenario on a local chain."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medchain.cli._context import Context

if TYPE_CHECKING:
    from web3 import Web3

    from medchain.scenario import ScenarioConfig, ScenarioResult

# The defaults are repeated from medchain.scenario so that `--help` does not import the SDK.
DEFAULT_PATIENTS = 100
DEFAULT_DAYS = 30


@click.group()
def scenario() -> None:
    """A seeded, reproducible regional-alliance scenario on a local Anvil: the consortium built by
    vote, then patients' visits, consents, records, reads, emergencies, medicines and claims over
    simulated days (chain time moves with the simulation)."""


@scenario.command("run")
@click.option(
    "--patients",
    type=int,
    default=DEFAULT_PATIENTS,
    show_default=True,
    help="Patients in the region (1 to 2000).",
)
@click.option("--days", type=int, default=DEFAULT_DAYS, show_default=True, help="Simulated days (1 to 365).")
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the run: the same seed gives the same keys, steps and counts.",
)
@click.option("--hospitals", type=int, default=3, show_default=True, help="Tertiary hospitals (founders).")
@click.option("--clinics", type=int, default=12, show_default=True, help="Community clinics.")
@click.option("--specialists", type=int, default=8, show_default=True, help="Specialist hospitals.")
@click.option(
    "--keep",
    is_flag=True,
    help="Run on the persistent local chain (`medchain chain up`; started if it is not running) and "
    "leave it running, the deployment's manifest at the usual place (or --manifest) so that the other "
    "commands work on it, the record store and plan files under $MEDCHAIN_HOME/scenario/ (its clock "
    "is then the simulated days ahead). Without --keep the run uses a throw-away Anvil and removes "
    "everything after the summary.",
)
@click.pass_obj
def run(
    obj: Context,
    patients: int,
    days: int,
    seed: int,
    hospitals: int,
    clinics: int,
    specialists: int,
    keep: bool,
) -> None:
    """Deploy the suite, build the alliance through governance and run the workload.

    The founding regulator and the tertiary hospitals found the consortium; specialist hospitals,
    the laboratory and the insurers are admitted by the founders' credit-weighted votes, then the
    clinics, manufacturers, distributors and pharmacies by everyone's. Then, day by day: clinic
    visits and referrals with signed consents, records anchored (singly, and the laboratory's
    nightly Merkle batch), audited reads (a recent scan read instead of repeated), reads refused
    without consent, break-glass sessions reviewed, medicines shipped, dispensed and one lot
    recalled, claims paid, pended, reviewed and appealed, and every kind of fraudulent claim
    refused. The summary gives the simulator's counts, the refusals by error, the block range, and
    the time and transactions it took.

    \b
    Examples:
      medchain scenario run                          the default size on a throw-away chain
      medchain --json scenario run --patients 20 --days 7 --seed 3
      medchain scenario run --keep                   keep the chain to explore it afterwards
    """
    from medchain.scenario import ScenarioConfig

    config = ScenarioConfig(
        patients=patients,
        days=days,
        seed=seed,
        hospitals=hospitals,
        clinics=clinics,
        specialists=specialists,
    )
    config.check()  # a size the scenario cannot run is refused before any chain starts
    if keep:
        result, url = _run_kept(obj, config)
        _summary(obj, result)
        obj.note(
            f"the chain keeps running at {url}; manifest {result.manifest_path}, files {result.work_dir} "
            "(`medchain chain down` stops it)"
        )
        return
    result = _run_throwaway(obj, config)
    _summary(obj, result)
    obj.note("the throw-away chain was stopped and its files removed (use --keep to keep them)")


def _run_kept(obj: Context, config: ScenarioConfig) -> tuple[ScenarioResult, str]:
    from medchain import settings
    from medchain.chain import connect
    from medchain.localchain import PersistentChain
    from medchain.scenario import check_manifest_target

    record, started = PersistentChain(obj.chain_dir).up(settings.chain_port())
    w3 = connect(record.url)
    manifest = obj.manifest_path(int(w3.eth.chain_id))
    replacing = manifest.is_file()
    check_manifest_target(manifest, int(w3.eth.chain_id))  # refused before any other line is printed
    obj.note(f"local chain {'started' if started else 'already running'} at {record.url}")
    if replacing:
        obj.note(f"{manifest} will name the scenario's deployment instead of the earlier one")
    work_dir = obj.home / "scenario" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return _run(w3, config, manifest, work_dir), record.url


def _run_throwaway(obj: Context, config: ScenarioConfig) -> ScenarioResult:
    from medchain.localchain import LocalChain

    with (
        tempfile.TemporaryDirectory(prefix="medchain-scenario-") as tmp,
        LocalChain("anvil", accounts=1) as w3,
    ):
        manifest = obj.manifest_option or Path(tmp) / "manifest.json"
        return _run(w3, config, manifest, Path(tmp))


def _run(w3: Web3, config: ScenarioConfig, manifest: Path, work_dir: Path) -> ScenarioResult:
    from medchain.scenario import ProgressBars, check_manifest_target, check_node, run_scenario

    # Refused before the progress bars start, so that the refusal is the only line on stderr.
    check_node(w3)
    check_manifest_target(manifest, int(w3.eth.chain_id))
    with ProgressBars() as bars:
        return run_scenario(w3, config, manifest, work_dir, bars)


def _summary(obj: Context, result: ScenarioResult) -> None:
    """One field/value summary (a table, or one JSON object with --json)."""
    counts = result.simulated.as_dict()
    refusals = counts.pop("refusals")
    fields: dict[str, Any] = {
        "chain_id": result.chain_id,
        "manifest": result.manifest_path,
        "from_block": result.from_block,
        "first_day_block": result.first_day_block,
        "to_block": result.to_block,
        "seed": result.seed,
        "patients": result.patients,
        "days": result.days,
        "institutions": dict(result.institutions),
        "wall_seconds": result.wall_seconds,
        "transactions": result.transactions,
        "refused_transactions": result.refused_transactions,
        "blocks": result.blocks,
        "transactions_per_second": round(result.transactions_per_second, 1),
    }
    # The simulator's own counts, labelled as such (a report from chain data is another source).
    fields |= {f"simulated_{name}": value for name, value in counts.items()}
    fields["simulated_refusals"] = refusals
    obj.show_one(f"Scenario (seed {result.seed}): {result.patients} patients, {result.days} days", fields)
