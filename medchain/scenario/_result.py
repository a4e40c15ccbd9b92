"""What a scenario run returns: where it ran, what it sent, and the simulator's own counts and
timings (the simulator's view, for checking a report computed from the chain against it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from medchain.types import Kind


@dataclass(frozen=True)
class SimulatorCounts:
    """What the SIMULATOR counted as it went (not read from the chain).

    A report computed from chain events should find the same numbers where the chain records the
    activity; the names say what each counts.
    """

    institutions: int
    """Consortium members at the end (founding regulator included)."""
    founders: int
    """Admitted at bootstrap (the founding regulator and the tertiary hospitals)."""
    admitted_by_vote: int
    votes_cast: int
    """Votes sent besides each proposer's own (counted by the contract when it proposes)."""
    patients: int
    payment_consenting_patients: int
    sharing_patients: int
    primary_visits: int
    referral_visits: int
    transfer_visits: int
    emergency_visits: int
    consents_signed: int
    """Grants submitted with the patient's EIP-712 signature (visit, standing and payment consents)."""
    visit_consents: int
    """Of ``consents_signed``: those given at a visit's check-in (the retrieval "request")."""
    consents_revoked: int
    records_anchored: int
    """Singly anchored records (RecordAnchored)."""
    lab_results_batched: int
    lab_batches: int
    cross_institution_reads: int
    """Audited reads by another institution under the patient's consent."""
    emergency_reads: int
    """Audited reads under a break-glass session."""
    exams_done: int
    """Imaging examinations performed (a new DiagnosticReport anchored)."""
    reexams_avoided: int
    """Visits that needed imaging and read another institution's recent result instead of
    repeating the examination (a hospital reusing its own recent scan is not counted)."""
    duplicate_exams: int
    """Of ``exams_done``: a recent result existed but the visiting institution could not read it."""
    unauthorised_attempts_blocked: int
    """Reads tried without consent, each refused and recorded on chain (AccessDenied)."""
    unauthorised_reads: int
    """Reads without consent that went through: the contract lets none, so 0."""
    break_glass_sessions: int
    break_glass_accepted: int
    break_glass_disputed: int
    products: int
    batches_commissioned: int
    shipments: int
    """Shipped and received (two transactions each)."""
    dispenses: int
    stock_outs: int
    """Prescriptions a pharmacy could not fill from active stock (the patient is sent elsewhere)."""
    recalls: int
    recall_units_located: int
    """Units the recall found at holders (available and in transit)."""
    recall_units_outstanding: int
    """Units of the recalled batch not yet dispensed when it was recalled."""
    recalled_dispenses_blocked: int
    claims_submitted: int
    """Accepted submissions (fraudulent ones are refused and not counted here)."""
    claims_paid_on_submission: int
    claims_pended: int
    claims_approved: int
    """Approvals on review, first review or after an appeal."""
    claims_denied: int
    claims_appealed: int
    claims_paid: int
    fraud_attempts: int
    """Fraudulent claims submitted; each was refused with the error expected for its kind."""
    refusals: Mapping[str, int] = field(default_factory=dict)
    """Every refused call by the contract's error name (fraud, reads, recalled dispenses...)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            f.name: dict(getattr(self, f.name)) if f.name == "refusals" else getattr(self, f.name)
            for f in fields(self)
        }


@dataclass(frozen=True)
class Retrieval:
    """A cross-institution read: the visit consent's block time (the request) and the audited
    access's block time, as the simulator saw them."""

    patient: str
    reader: str
    record_id: str
    batched: bool
    requested_at: int
    accessed_at: int


@dataclass(frozen=True)
class Exam:
    """An imaging examination performed (a DiagnosticReport anchored)."""

    patient: str
    custodian: str
    record_id: str
    anchored_at: int
    duplicate: bool


@dataclass(frozen=True)
class ClaimTiming:
    """A claim's life as the simulator drove it (None where the step did not happen)."""

    claim_id: str
    provider: str
    submitted_at: int
    first_review_at: int | None
    appealed_at: int | None
    appeal_decided_at: int | None
    paid_at: int | None


@dataclass(frozen=True)
class SessionTiming:
    """A break-glass session: opened, reviewed (None if the run ended first), disputed or not."""

    session_id: int
    institution: str
    patient: str
    opened_at: int
    reviewed_at: int | None
    disputed: bool


@dataclass(frozen=True)
class RecallTiming:
    batch_id: str
    recalled_at: int
    units_located: int
    units_outstanding: int


@dataclass(frozen=True)
class SimulatorTimings:
    """Per-step timestamps (chain block times of the steps, as the simulator recorded them)."""

    retrievals: tuple[Retrieval, ...]
    exams: tuple[Exam, ...]
    claims: tuple[ClaimTiming, ...]
    sessions: tuple[SessionTiming, ...]
    recalls: tuple[RecallTiming, ...]


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario run.

    Attributes:
        manifest_path: The deployment manifest the run wrote.
        chain_id: The chain it ran on.
        from_block: The first block of the run (the deployment's first block).
        first_day_block: The first block of the simulated days; the blocks before it are the
            set-up (deployment, governance, plans, deliveries, enrolment, onboarded records).
        to_block: The last block of the run.
        seed, patients, days: The run's inputs.
        institutions: Members admitted, by kind label.
        started_at: Chain time of day 0, 00:00 (UTC) of the simulated period.
        ended_at: Chain time of the last block.
        wall_seconds: How long the run took on this machine.
        transactions: Transactions sent (refused ones included).
        refused_transactions: Of those, mined with status 0 (a contract refusal, each expected).
        blocks: Blocks mined.
        simulated: The SIMULATOR's own counters (not read from the chain).
        timings: The SIMULATOR's per-step timestamps.
        work_dir: Where the run kept its off-chain files (store, plan files).
    """

    manifest_path: Path
    chain_id: int
    from_block: int
    first_day_block: int
    to_block: int
    seed: int
    patients: int
    days: int
    institutions: Mapping[str, int]
    started_at: int
    ended_at: int
    wall_seconds: float
    transactions: int
    refused_transactions: int
    blocks: int
    simulated: SimulatorCounts
    timings: SimulatorTimings
    work_dir: Path

    @property
    def transactions_per_second(self) -> float:
        return self.transactions / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (paths as text), for JSON."""
        data = asdict(self)
        data["manifest_path"] = str(self.manifest_path)
        data["work_dir"] = str(self.work_dir)
        data["institutions"] = dict(self.institutions)
        data["simulated"] = self.simulated.as_dict()
        data["transactions_per_second"] = round(self.transactions_per_second, 1)
        return data


def kind_counts(kinds: list[Kind]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind.label] = counts.get(kind.label, 0) + 1
    return counts
