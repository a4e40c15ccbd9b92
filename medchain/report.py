"""The KPI report: the published before/after table, computed from chain data alone.

:func:`build_report` reads a deployment's events (``ContractClient.logs``) and its failed
transactions (``Chain.failed_transactions``) for a block range, and nothing else: no simulator
counter, no off-chain file. Events from the deployment block on are read so that a figure for the
range can look back (a consent given before the range still covers a read inside it); every figure
counts only what happened inside the range. Times are block timestamps (chain seconds).

The "before" column is a stated model input, the seed paper's Table 1 (:data:`TABLE1`, with its
source in :data:`TABLE1_SOURCE`); the "after" column is what the chain shows, labelled
"simulated" when the chain is a local development chain (a scenario's run) and "measured"
otherwise.

The on-chain definition of each KPI is :data:`DEFINITIONS` (shown on the HTML page as well).

Value models: :mod:`medchain.value` with the paper's inputs, and eta from the chain's timings
(see :func:`measured_efficiency` for the mapping of the paper's four steps).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from web3 import Web3

from medchain.chain import ChainLog, ContractClient, FailedTransaction
from medchain.errors import ConfigurationError
from medchain.suite import Suite
from medchain.types import (
    ZERO32,
    Actions,
    BatchStatus,
    ClaimStatus,
    Kind,
    MemberStatus,
    Purpose,
    Review,
    ScopeKind,
    category_code,
)
from medchain.value import (
    PAPER_COST,
    PAPER_COST_UNIT,
    PAPER_EFFICIENCY,
    PAPER_ETA_REMARK,
    PAPER_PRINTED_COST_AFTER,
    PAPER_PRINTED_ETA,
    PAPER_PRINTED_SAVING_RATE,
    CostResult,
    EfficiencyInputs,
    EfficiencyResult,
    StepTiming,
    ValueModelError,
    cost_model,
    efficiency_from_timings,
    efficiency_gain,
)

__all__ = [
    "DEFINITIONS",
    "EXAMINATION_CATEGORIES",
    "LOCAL_CHAIN_IDS",
    "RECENT_RESULT_DAYS",
    "TABLE1",
    "TABLE1_SOURCE",
    "Activity",
    "Baseline",
    "ClaimFigures",
    "Disputes",
    "Durations",
    "Examinations",
    "KpiRow",
    "RecallReach",
    "Report",
    "ReportError",
    "Retrieval",
    "UnauthorisedAccess",
    "ValueModels",
    "build_report",
    "measured_efficiency",
]


class ReportError(ConfigurationError):
    """The block range cannot be reported on (before the deployment, beyond the chain's head, or
    without any of the deployment's events); the message says which and what to pass instead."""


# ─── Stated model inputs: the "before" column ───────────────────────────────────────────────

TABLE1_SOURCE = (
    "Kan S., Zhang C., Li P. (2026), 'The Integrated Application and Value Creation of Blockchain "
    "Technology in the Digital Healthcare Field from the Perspective of Innovation-Driven in the New "
    "Era', Service Science and Management 15(2): 404-410, doi:10.12677/ssem.2026.152043, section 3.5, "
    "Table 1: the Changzhou medical blockchain alliance (23 institutions: 3 tertiary, 12 community, "
    "8 specialist hospitals), before = 2023, after = 2025"
)
"""Where the "before" figures (and the paper's own "after" figures) come from."""


@dataclass(frozen=True)
class Baseline:
    """One row of the paper's Table 1: a stated model input, not a measurement of ours.

    Attributes:
        key: The KPI it is the baseline of.
        indicator: Table 1's indicator, in English (the Chinese original in ``original``).
        before: Table 1's 2023 figure, in ``unit``.
        paper_after: Table 1's 2025 figure, in ``unit`` (shown for comparison, never computed with).
        unit: The unit of both figures.
        original: The indicator as printed (Chinese).
    """

    key: str
    indicator: str
    before: float
    paper_after: float
    unit: str
    original: str


TABLE1: tuple[Baseline, ...] = (
    Baseline("retrieval", "Cross-institution record retrieval time", 45, 27, "min", "跨机构病历调阅时间"),
    Baseline("duplicate_exams", "Duplicate examination rate", 0.31, 0.09, "share", "重复检查率"),
    Baseline("exam_cost", "Average examination cost per patient visit", 1860, 660, "CNY", "患者平均检查费用"),
    Baseline(
        "unauthorised", "Unauthorised data access incidents", 12, 0, "per quarter", "非授权数据访问事件"
    ),
    Baseline("disputes", "Dispute handling cycle", 42, 15, "days", "医疗纠纷处理周期"),
)
"""The seed paper's Table 1 (:data:`TABLE1_SOURCE`), the report's "before" column."""

EXAMINATION_CATEGORIES: tuple[str, ...] = ("DiagnosticReport", "ImagingStudy")
"""Record categories that are examinations (an imaging or diagnostic study whose repetition costs
the patient), for the duplicate-examination KPI. Batched records are not among them: a batch anchors
only a Merkle root, so the chain does not show their categories."""

CARE_PROVIDER_KINDS = frozenset(
    {int(Kind.HOSPITAL), int(Kind.COMMUNITY_CLINIC), int(Kind.SPECIALIST_HOSPITAL)}
)
"""Kinds whose visits the retrieval and avoided re-examination figures count (who treats patients,
as ``KindMasks.CARE_PROVIDERS``). Any address can be a patient and grant any address: a read by a
person or by another kind of member is no cross-institution retrieval and avoids no examination,
and counting it would let anyone move those figures with two transactions a sample."""

RECENT_RESULT_DAYS = 60
"""How recent another institution's result must be for a new examination to repeat it (days)."""

DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "Positions and times",
        "Events are ordered by (block, log index); times are block timestamps (chain seconds). Events "
        "from the deployment block on are read so that a figure can look back (a consent given before "
        "the range still covers a read inside it); every figure counts only what happened in the range.",
    ),
    (
        "Cross-institution record retrieval time",
        "Request: a ConsentGranted in the range whose terms let the grantee READ for TREAT (the visit "
        "consent a patient gives an institution at check-in), to a grantee other than the patient. "
        "Access: the first RecordAccessed after it with accessor = the grantee, patient = the patient, "
        "authorization = that grant id and breakGlass false, before the same grant id is granted again "
        "(the next visit) and within the range. Time = access - request; median and p90 over requests "
        "with an access. A grant-based read is never the custodian's or the patient's own (those carry "
        "authorization 0), so each is cross-institution. The grantee must be a care provider (admitted "
        "as a hospital, community clinic or specialist hospital by MemberAdmitted, not suspended or "
        "removed) at the request: anyone can grant any address, so a read by a person or another kind "
        "of member is not counted.",
    ),
    (
        "Duplicate examination rate",
        "Examination: a RecordAnchored in the range of an examination category (DiagnosticReport, "
        "ImagingStudy). Duplicate: at its position a result of the same category for the same patient, "
        "anchored by another institution within the recency window (60 days) before it, was shareable "
        "with the examining institution: one of the patient's grants to it (its latest ConsentGranted, "
        "not followed by a ConsentRevoked, nor for a guardian's grant by that guardian's GuardianRemoved) "
        "let it READ that result for TREAT then (scope record, category or all; validity window; the "
        "institution not suspended or removed). Rate = duplicates / examinations. A repeat of a recent "
        "result the institution could not read is shown apart. A re-examination avoided: a visit (the "
        "request a read relied on, or the break-glass session) in which the institution read "
        "(RecordAccessed) another institution's examination result from within the window and anchored "
        "no examination of that category for the patient before the next request of the same grant; "
        "the reader must be a care provider as for a retrieval request.",
    ),
    (
        "Unauthorised access",
        "Blocked: AccessDenied events plus failed EHRIndex transactions refused with EHRAccessDenied. "
        "Succeeded: RecordAccessed events without a valid basis, each checked from events independently "
        "of the contract: the reader is the patient or the record's custodian; or the authorization is a "
        "grant of this patient to this reader that permitted READ for the purpose at that time; or, with "
        "breakGlass, a BreakGlassOpened session of this institution for this patient, the pair's latest, "
        "not expired (as shortened by BreakGlassEnded), for purpose ETREAT (the institution-wide dispute "
        "limit is not re-derived). Incidents per quarter: reads without a basis per 365.25 / 4 days of "
        "the range's chain time. Disputed break-glass sessions are shown apart: they had a basis when "
        "they happened.",
    ),
    ("Claim turnaround", "ClaimSubmitted to ClaimPaid of the same claim, for payments in the range."),
    (
        "Dispute handling time",
        "Break-glass: BreakGlassOpened to BreakGlassReviewed of the same session (reviews in the range). "
        "Claim appeals: ClaimAppealed to the next ClaimReviewed of the claim (decisions in the range). "
        "The dispute row pools both.",
    ),
    (
        "Recall reach",
        "Per recall in the range (BatchStatusChanged to Recalled): units in circulation = "
        "BatchCommissioned quantity minus Dispensed and UnitsDestroyed before the recall; located = the "
        "recall transaction's HolderAtRecall units (available + in transit); blocked = located minus "
        "units shipped or dispensed from the batch afterwards. Reach = blocked / in circulation. "
        "Movements refused afterwards (DrugBatchNotActive naming the batch as Recalled) are counted.",
    ),
    (
        "Claims refused by reason",
        "A refused claim leaves no event: it is a failed transaction (status 0) to ClaimsProcessor "
        "calling submitClaim in the range, found by reading every block with its transactions and the "
        "receipts of blocks that call the suite; its reason is the custom error the node reports when "
        "it re-executes the transaction in place (debug_traceTransaction with the call tracer, which "
        "Anvil answers), or, on a node without a debug API, when the call is replayed with eth_call at "
        "the parent block.",
    ),
    (
        "Counts",
        "Records anchored singly (RecordAnchored; amendments, RecordAmended, included and counted apart) "
        "and in batches (BatchAnchored and its count); consents granted (ConsentGranted, by signature "
        "apart) and revoked (ConsentRevoked); claims paid (ClaimPaid), denied (ClaimReviewed with status "
        "Denied) and refused.",
    ),
)
"""How each KPI is read from the chain, in words (the module and the HTML page show these)."""

LOCAL_CHAIN_IDS = frozenset({31337, 1337})
"""Chain ids of local development chains (Anvil, Ganache): figures from them are simulated."""

QUARTER_SECONDS = 365.25 * 86400 / 4
MINUTE, HOUR, DAY = 60, 3600, 86400
TOKEN_DECIMALS = 6

Progress = Callable[[str], None]
"""Told the name of each stage as the report reads the chain (for a progress display)."""


# ─── Figures ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Durations:
    """A set of durations in chain seconds.

    ``median`` and ``p90`` interpolate linearly between order statistics (the "inclusive" method
    of :func:`statistics.quantiles`, numpy's default); with one value both are that value; with
    none, every figure is None.
    """

    count: int
    median: float | None
    p90: float | None
    mean: float | None
    longest: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        data = sorted(float(v) for v in values)
        if not data:
            return cls(0, None, None, None, None)
        p90 = data[0] if len(data) == 1 else statistics.quantiles(data, n=10, method="inclusive")[8]
        return cls(len(data), statistics.median(data), p90, statistics.fmean(data), data[-1])


@dataclass(frozen=True)
class Retrieval:
    """Cross-institution record retrieval (request to audited access).

    Attributes:
        requests: Visit consents (READ for TREAT) granted in the range.
        fulfilled: Requests followed by an audited access under that grant.
        times: Request to access, seconds.
    """

    requests: int
    fulfilled: int
    times: Durations


@dataclass(frozen=True)
class Examinations:
    """Examinations and their repetition.

    Attributes:
        categories: What counted as an examination.
        window_days: How recent a result must be to be repeated.
        performed: Examinations anchored in the range.
        duplicates: Of them, made while a shareable recent result existed elsewhere.
        repeats_not_shareable: Of them, repeating a recent result elsewhere that the institution
            could not read.
        avoided: Visits that read another institution's recent result instead of examining.
    """

    categories: tuple[str, ...]
    window_days: int
    performed: int
    duplicates: int
    repeats_not_shareable: int
    avoided: int

    @property
    def rate(self) -> float | None:
        """Duplicate examination rate: duplicates / examinations performed."""
        return self.duplicates / self.performed if self.performed else None

    @property
    def repeat_rate(self) -> float | None:
        """Examinations repeating any recent result elsewhere (shareable or not) / performed."""
        return (self.duplicates + self.repeats_not_shareable) / self.performed if self.performed else None


@dataclass(frozen=True)
class UnauthorisedAccess:
    """Reads tried without consent, and reads that happened without a valid basis.

    Attributes:
        reads: Audited reads (``RecordAccessed``) in the range.
        break_glass_reads: Of them, by break-glass.
        blocked_recorded: Refusals recorded as ``AccessDenied``.
        blocked_reverted: Reads refused by revert (failed EHRIndex transactions, ``EHRAccessDenied``).
        without_basis: Transactions of reads with no valid basis found (should be none).
        unverifiable: Reads whose record could not be identified from chain data (not checked).
        disputed_sessions: Break-glass sessions reviewed as disputed in the range (emergency reads
            judged unjustified afterwards; they had a basis when they happened).
        span_seconds: The range's chain time, for the per-quarter rate.
    """

    reads: int
    break_glass_reads: int
    blocked_recorded: int
    blocked_reverted: int
    without_basis: tuple[str, ...]
    unverifiable: int
    disputed_sessions: int
    span_seconds: int

    @property
    def blocked(self) -> int:
        return self.blocked_recorded + self.blocked_reverted

    @property
    def succeeded(self) -> int:
        return len(self.without_basis)

    @property
    def incidents_per_quarter(self) -> float | None:
        """Reads without a valid basis per 365.25 / 4 days of the range (None for an instant range)."""
        return self.succeeded * QUARTER_SECONDS / self.span_seconds if self.span_seconds > 0 else None


@dataclass(frozen=True)
class ClaimFigures:
    """Claims in the range.

    Attributes:
        submitted: Claims accepted for adjudication (``ClaimSubmitted``).
        paid_at_submission: Of them, paid in the submitting transaction (a ``ClaimPaid`` in the
            same transaction).
        pended: Of them, pended for the insurer's review.
        paid: Payments (``ClaimPaid``).
        paid_amount: Their total, in settlement-token units.
        approved_on_review: ``ClaimReviewed`` approvals.
        denied: ``ClaimReviewed`` denials.
        appealed: ``ClaimAppealed``.
        refused: Claims refused by the contract (failed ``submitClaim`` transactions).
        refused_by_error: ``(error name, count)``, most frequent first.
        other_refusals: Other failed ClaimsProcessor calls, ``("function: error", count)``.
        turnaround: Submission to payment, seconds, for payments in the range.
        turnaround_reviewed: The same for claims not paid at submission (pended, approved on review
            or after an appeal, or waiting for pool funds).
    """

    submitted: int
    paid_at_submission: int
    pended: int
    paid: int
    paid_amount: int
    approved_on_review: int
    denied: int
    appealed: int
    refused: int
    refused_by_error: tuple[tuple[str, int], ...]
    other_refusals: tuple[tuple[str, int], ...]
    turnaround: Durations
    turnaround_reviewed: Durations


@dataclass(frozen=True)
class Disputes:
    """Break-glass reviews and claim appeals, and how long they took.

    Attributes:
        sessions_opened: Break-glass sessions opened in the range.
        sessions_reviewed: Reviewed in the range.
        sessions_disputed: Of them, disputed.
        break_glass_review: Opening to review, seconds.
        appeals: Claims appealed in the range.
        appeals_decided: Appeals decided in the range.
        appeal_decision: Appeal to decision, seconds.
        pooled: Both kinds together.
    """

    sessions_opened: int
    sessions_reviewed: int
    sessions_disputed: int
    break_glass_review: Durations
    appeals: int
    appeals_decided: int
    appeal_decision: Durations
    pooled: Durations


@dataclass(frozen=True)
class RecallReach:
    """Recalls in the range and the units they reached.

    Attributes:
        recalls: Batches recalled.
        in_circulation: Units not dispensed or destroyed when recalled.
        located: Units the recall listed (``HolderAtRecall``: available + in transit).
        blocked: Located units that did not move afterwards.
        moved_after_recall: Units shipped or dispensed from a recalled batch afterwards.
        refused_movements: Movements refused afterwards (``DrugBatchNotActive``, status Recalled).
    """

    recalls: int
    in_circulation: int
    located: int
    blocked: int
    moved_after_recall: int
    refused_movements: int

    @property
    def reach(self) -> float | None:
        """Blocked / in circulation (None without a recall, or with nothing left to recall)."""
        return self.blocked / self.in_circulation if self.in_circulation else None


@dataclass(frozen=True)
class Activity:
    """Plain counts of what happened in the range."""

    records_single: int
    records_amended: int
    record_batches: int
    records_batched: int
    entered_in_error: int
    consents_granted: int
    consents_by_signature: int
    consents_revoked: int
    transactions_failed: int


@dataclass(frozen=True)
class KpiRow:
    """One line of the before/after table (all text as shown; the values for charts and checks).

    Attributes:
        key: Stable identifier.
        indicator: What is measured.
        before: The stated before figure as shown ("—" when Table 1 has none).
        after: The chain's figure as shown.
        change: Relative change after vs before as shown ("—" when not comparable).
        before_value: The before figure in ``unit``, or None.
        after_value: The after figure in ``unit``, or None.
        paper_after_value: Table 1's own 2025 figure, or None.
        unit: The unit of the values.
        basis: "simulated", "measured" or "not on chain" (for ``after``).
        source: Where ``before`` comes from ("" without one).
    """

    key: str
    indicator: str
    before: str
    after: str
    change: str
    before_value: float | None
    after_value: float | None
    paper_after_value: float | None
    unit: str
    basis: str
    source: str


@dataclass(frozen=True)
class ValueModels:
    """The paper's value models, and eta from the chain's timings.

    Attributes:
        paper_efficiency: eta from the paper's alphas (99.1 %).
        printed_eta: eta as the paper prints it (98.1 %).
        eta_remark: Why the two differ.
        cost: The cost model with the paper's inputs (456.1, a 37.5 % saving).
        printed_cost_after: C' as printed.
        printed_saving_rate: The saving as printed.
        cost_unit: The cost figures' unit.
        measured: eta from the chain's step timings (None when it cannot be computed: see note).
        measured_steps: The timings it used (seconds; before from Table 1).
        measured_note: How the paper's four steps map to chain timings, and any reason eta is None.
        table1_saving: 1 - after / before of Table 1's retrieval time (27 / 45 min): the saving
            the paper's own case shows for the same span.
    """

    paper_efficiency: EfficiencyResult
    printed_eta: float
    eta_remark: str
    cost: CostResult
    printed_cost_after: float
    printed_saving_rate: float
    cost_unit: str
    measured: EfficiencyResult | None
    measured_steps: tuple[StepTiming, ...]
    measured_note: str
    table1_saving: float


@dataclass(frozen=True)
class Report:
    """The KPI report of a block range.

    Attributes:
        chain_id: The chain.
        from_block: First block counted (the deployment block if the range started earlier).
        to_block: Last block counted.
        deploy_block: The deployment's block.
        started_at: Timestamp of ``from_block``.
        ended_at: Timestamp of ``to_block``.
        basis: "simulated" on a local development chain, "measured" otherwise.
        revert_source: How refused transactions' errors were read ("trace", "replay", a mix, or
            "" when none failed).
    """

    chain_id: int
    from_block: int
    to_block: int
    deploy_block: int
    started_at: int
    ended_at: int
    basis: str
    retrieval: Retrieval
    examinations: Examinations
    unauthorised: UnauthorisedAccess
    claims: ClaimFigures
    disputes: Disputes
    recalls: RecallReach
    activity: Activity
    value: ValueModels
    rows: tuple[KpiRow, ...]
    revert_source: str
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def span_seconds(self) -> int:
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (what ``medchain report --json`` prints and what the
        HTML page shows)."""
        data: dict[str, Any] = _plain(asdict(self))
        data["span_seconds"] = self.span_seconds
        data["examinations"]["rate"] = self.examinations.rate
        data["examinations"]["repeat_rate"] = self.examinations.repeat_rate
        data["unauthorised"]["blocked"] = self.unauthorised.blocked
        data["unauthorised"]["succeeded"] = self.unauthorised.succeeded
        data["unauthorised"]["incidents_per_quarter"] = self.unauthorised.incidents_per_quarter
        data["recalls"]["reach"] = self.recalls.reach
        data["format"] = REPORT_FORMAT
        return data


REPORT_FORMAT = "medchain-kpi-report/1"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ─── Building the report ────────────────────────────────────────────────────────────────────


def build_report(
    suite: Suite,
    from_block: int,
    to_block: int | None = None,
    *,
    window_days: int = RECENT_RESULT_DAYS,
    exam_categories: Sequence[str] = EXAMINATION_CATEGORIES,
    progress: Progress | None = None,
) -> Report:
    """Computes the KPI report of blocks ``from_block..to_block`` from the chain alone.

    Args:
        suite: The deployment's clients.
        from_block: First block of the range (a range starting before the deployment starts at it).
        to_block: Last block (default: the chain's latest).
        window_days: How recent a result must be for an examination to repeat it.
        exam_categories: Record categories that are examinations.
        progress: Told each stage's name as it starts.

    Raises:
        ReportError: the range is empty, beyond the chain's head, ends before the deployment, or
            holds none of the deployment's events.
        ChainError: the node could not answer.
    """
    tell = progress or (lambda _stage: None)
    chain, deployment = suite.chain, suite.deployment
    latest = int(chain.w3.eth.block_number)
    last = latest if to_block is None else to_block
    if from_block < 0 or last < 0:
        raise ReportError("block numbers cannot be negative")
    if last > latest:
        raise ReportError(f"block {last} is beyond the chain's latest block {latest}")
    if from_block > last:
        raise ReportError(f"the range {from_block}..{last} is empty: --from-block is after --to-block")
    deploy_block = deployment.deploy_block
    if last < deploy_block:
        raise ReportError(
            f"blocks {from_block}..{last} end before this deployment (deployed at block {deploy_block} on "
            f"chain {deployment.chain_id}): nothing to report; use --from-block {deploy_block} or later"
        )
    first = max(from_block, deploy_block)

    tell("reading events")
    clients: dict[str, ContractClient] = {
        "InstitutionRegistry": suite.registry,
        "ConsentManager": suite.consent,
        "EHRIndex": ContractClient(chain, suite.ehr_contract, deploy_block),
        "DrugProvenance": suite.drugs,
        "ClaimsProcessor": suite.claims,
    }
    logs: dict[str, list[ChainLog]] = {}
    for client in clients.values():
        for log in client.logs(deploy_block, last):
            logs.setdefault(log.event, []).append(log)
    history = _History(logs, first, last)
    if not history.any_in_range():
        raise ReportError(
            f"no events of this deployment (deployed at block {deploy_block} on chain "
            f"{deployment.chain_id}) in blocks {first}..{last}: nothing to report"
        )

    tell("reading refused transactions")
    contracts = {name: client.contract for name, client in clients.items()}
    failed = chain.failed_transactions(contracts, first, last)

    tell("computing the KPIs")
    times = chain.block_times(sorted({first, last}))
    started, ended = times[first], times[last]
    basis = "simulated" if deployment.chain_id in LOCAL_CHAIN_IDS else "measured"
    book = _Book(history)
    records = _Records(history, suite)
    retrieval = _retrieval(history, book)
    examinations = _examinations(history, book, records, tuple(exam_categories), window_days)
    unauthorised = _unauthorised(history, book, records, failed, ended - started)
    claims = _claims(history, failed)
    disputes = _disputes(history)
    recalls = _recalls(history, failed)
    activity = _activity(history, failed)
    value = _value_models(retrieval)
    rows = _rows(basis, retrieval, examinations, unauthorised, claims, disputes, recalls, activity)
    sources = sorted({f.source for f in failed})
    return Report(
        chain_id=deployment.chain_id,
        from_block=first,
        to_block=last,
        deploy_block=deploy_block,
        started_at=started,
        ended_at=ended,
        basis=basis,
        retrieval=retrieval,
        examinations=examinations,
        unauthorised=unauthorised,
        claims=claims,
        disputes=disputes,
        recalls=recalls,
        activity=activity,
        value=value,
        rows=rows,
        revert_source=", ".join(sources),
        sources={"before": TABLE1_SOURCE, "after": _after_source(basis, deployment.chain_id, first, last)},
    )


def _after_source(basis: str, chain_id: int, first: int, last: int) -> str:
    what = "simulated: a local development chain" if basis == "simulated" else "measured on chain"
    return (
        f"{what} (chain {chain_id}), blocks {first}..{last}, computed from its events and failed transactions"
    )


# ─── Chain history ──────────────────────────────────────────────────────────────────────────

Position = tuple[int, int]
END: Position = (2**63, 0)


class _History:
    """The deployment's events up to the range's end, by name, and which of them are in range."""

    def __init__(self, logs: Mapping[str, list[ChainLog]], first: int, last: int) -> None:
        self.logs = logs
        self.first = first
        self.last = last

    def all(self, event: str) -> list[ChainLog]:
        return self.logs.get(event, [])

    def in_range(self, event: str) -> list[ChainLog]:
        return [log for log in self.logs.get(event, []) if log.block >= self.first]

    def any_in_range(self) -> bool:
        return any(log.block >= self.first for logs in self.logs.values() for log in logs)


@dataclass(frozen=True)
class _GrantEvent:
    position: Position
    terms: Mapping[str, Any] | None
    """The terms granted, or None for a revocation."""
    actor: str


class _Book:
    """Consent, guardianship, membership and break-glass state at any position, from events."""

    def __init__(self, history: _History) -> None:
        self.grants: dict[bytes, list[_GrantEvent]] = defaultdict(list)
        self.by_pair: dict[tuple[str, str], set[bytes]] = defaultdict(set)
        for log in history.all("ConsentGranted"):
            a = log.args
            grant_id = bytes(a["grantId"])
            self.grants[grant_id].append(_GrantEvent(log.position, a["terms"], str(a["actor"])))
            self.by_pair[(str(a["patient"]), str(a["grantee"]))].add(grant_id)
        for log in history.all("ConsentRevoked"):
            self.grants[bytes(log.args["grantId"])].append(
                _GrantEvent(log.position, None, str(log.args["actor"]))
            )
        for events in self.grants.values():
            events.sort(key=lambda e: e.position)
        self.guardian_removed: dict[tuple[str, str], list[Position]] = defaultdict(list)
        for log in history.all("GuardianRemoved"):
            self.guardian_removed[(str(log.args["patient"]), str(log.args["guardian"]))].append(log.position)
        self.status: dict[str, list[tuple[Position, int]]] = defaultdict(list)
        for log in history.all("MemberAdmitted"):
            self.status[str(log.args["account"])].append((log.position, int(MemberStatus.ACTIVE)))
        for log in history.all("MemberStatusChanged"):
            self.status[str(log.args["account"])].append((log.position, int(log.args["current"])))
        for changes in self.status.values():
            changes.sort()
        self.care_provider_since: dict[str, Position] = {
            str(log.args["account"]): log.position
            for log in history.all("MemberAdmitted")
            if int(log.args["kind"]) in CARE_PROVIDER_KINDS
        }
        self.sessions: dict[int, ChainLog] = {
            int(log.args["sessionId"]): log for log in history.all("BreakGlassOpened")
        }
        self.session_ends: dict[int, list[tuple[Position, int]]] = defaultdict(list)
        for log in history.all("BreakGlassEnded"):
            self.session_ends[int(log.args["sessionId"])].append((log.position, int(log.args["expiresAt"])))
        self.pair_sessions: dict[tuple[str, str], list[tuple[Position, int]]] = defaultdict(list)
        for session_id, log in self.sessions.items():
            key = (str(log.args["patient"]), str(log.args["institution"]))
            self.pair_sessions[key].append((log.position, session_id))

    def latest_grant(self, grant_id: bytes, at: Position) -> _GrantEvent | None:
        """The grant's latest ``ConsentGranted`` before ``at``, unless revoked since (None)."""
        current: _GrantEvent | None = None
        for event in self.grants.get(grant_id, []):
            if event.position >= at:
                break
            current = event
        return current if current is not None and current.terms is not None else None

    def active_member(self, account: str, at: Position) -> bool:
        """False while the account is a suspended or removed member (persons are not members)."""
        status = int(MemberStatus.NONE)
        for position, value in self.status.get(account, []):
            if position >= at:
                break
            status = value
        return status in (int(MemberStatus.NONE), int(MemberStatus.ACTIVE))

    def is_care_provider(self, account: str, at: Position) -> bool:
        """Whether ``account`` was admitted as a care provider before ``at`` and is active then."""
        since = self.care_provider_since.get(account)
        return since is not None and since < at and self.active_member(account, at)

    def permits(
        self,
        grant_id: bytes,
        at: Position,
        time: int,
        patient: str,
        reader: str,
        record_id: bytes,
        category: bytes | None,
        purpose: int,
    ) -> bool:
        """Whether grant ``grant_id`` let ``reader`` READ the patient's record for ``purpose`` at
        ``at`` (chain time ``time``). ``category`` None: unknown (a category-scoped grant then
        cannot be shown to cover the record)."""
        event = self.latest_grant(grant_id, at)
        if event is None or event.terms is None:
            return False
        t = event.terms
        if str(t["patient"]) != patient or str(t["grantee"]) != reader:
            return False
        if not int(t["actions"]) & int(Actions.READ) or not int(t["purposes"]) & (1 << purpose):
            return False
        if not int(t["notBefore"]) <= time <= int(t["notAfter"]):
            return False
        scope, value = int(t["scopeKind"]), bytes(t["scopeValue"])
        covered = (
            scope == ScopeKind.ALL
            or (scope == ScopeKind.RECORD and value == record_id)
            or (scope == ScopeKind.CATEGORY and category is not None and value == category)
        )
        if not covered:
            return False
        if event.actor != patient and any(
            event.position < removed < at for removed in self.guardian_removed.get((patient, event.actor), [])
        ):
            return False  # a guardian's grant lapses with its guardianship
        return self.active_member(reader, at)

    def shareable(
        self, patient: str, reader: str, record_id: bytes, category: bytes, at: Position, time: int
    ) -> bool:
        """Whether any grant of the patient let ``reader`` read the record for TREAT at ``at``."""
        return any(
            self.permits(g, at, time, patient, reader, record_id, category, int(Purpose.TREAT))
            for g in self.by_pair.get((patient, reader), ())
        )

    def session_permits(self, session_id: int, at: Position, time: int, patient: str, reader: str) -> bool:
        """Whether break-glass session ``session_id`` let ``reader`` read the patient's records at ``at``."""
        opened = self.sessions.get(session_id)
        if opened is None or opened.position >= at:
            return False
        if str(opened.args["patient"]) != patient or str(opened.args["institution"]) != reader:
            return False
        later = [s for p, s in self.pair_sessions[(patient, reader)] if opened.position < p < at]
        if later:
            return False  # replaced by a newer session of the same pair
        expires = int(opened.args["expiresAt"])
        for position, shortened in self.session_ends.get(session_id, []):
            if position < at:
                expires = shortened
        return time <= expires and self.active_member(reader, at)


@dataclass(frozen=True)
class _Record:
    patient: str
    custodian: str
    category: bytes
    position: Position
    timestamp: int


class _Records:
    """Records by id: single anchors from ``RecordAnchored``; others (batched) from the header in
    the reading transaction's input, fetched only when a check needs it."""

    def __init__(self, history: _History, suite: Suite) -> None:
        self.suite = suite
        self.by_id: dict[bytes, _Record] = {}
        for log in history.all("RecordAnchored"):
            a = log.args
            self.by_id[bytes(a["recordId"])] = _Record(
                str(a["patient"]), str(a["custodian"]), bytes(a["category"]), log.position, log.timestamp
            )
        self.batch_custodian = {
            int(log.args["batchId"]): str(log.args["custodian"]) for log in history.all("BatchAnchored")
        }
        self._from_inputs: dict[str, dict[bytes, tuple[str, bytes]]] = {}

    def header_facts(self, record_id: bytes, tx: str) -> tuple[str, bytes] | None:
        """(custodian, category) of a record, from its anchor or from the header a reading
        transaction carried (checked to hash to the id); None when neither is available."""
        known = self.by_id.get(record_id)
        if known is not None:
            return known.custodian, known.category
        if tx not in self._from_inputs:
            self._from_inputs[tx] = self._decode_access(tx)
        return self._from_inputs[tx].get(record_id)

    def _decode_access(self, tx: str) -> dict[bytes, tuple[str, bytes]]:
        from medchain.ehr import RecordHeader

        contract = self.suite.ehr_contract
        (answer,) = self.suite.chain.rpc_batch([("eth_getTransactionByHash", [tx])])
        found = answer.get("result")
        if not isinstance(found, dict) or str(found.get("to") or "").lower() != str(contract.address).lower():
            return {}
        try:
            _function, args = contract.decode_function_input(found["input"])
        except ValueError:
            return {}
        raw = args.get("header")
        if raw is None:
            return {}
        header = RecordHeader(
            Web3.to_checksum_address(raw["patient"]),
            Web3.to_checksum_address(raw["custodian"]),
            bytes(raw["fingerprint"]),
            bytes(raw["category"]),
            bytes(raw["previous"]),
        )
        batch = args.get("batchId")
        if batch is not None and self.batch_custodian.get(int(batch)) != header.custodian:
            return {}
        return {bytes(header.record_id): (header.custodian, header.category)}


# ─── Each KPI ───────────────────────────────────────────────────────────────────────────────


def _is_request(log: ChainLog) -> bool:
    terms = log.args["terms"]
    return (
        bool(int(terms["actions"]) & int(Actions.READ))
        and bool(int(terms["purposes"]) & Purpose.mask(Purpose.TREAT))
        and str(log.args["grantee"]) != str(log.args["patient"])
    )


def _next_grant(grants: Sequence[ChainLog], after: Position) -> Position:
    return next((g.position for g in grants if g.position > after), END)


def _retrieval(history: _History, book: _Book) -> Retrieval:
    by_grant: dict[bytes, list[ChainLog]] = defaultdict(list)
    for log in history.all("ConsentGranted"):
        by_grant[bytes(log.args["grantId"])].append(log)
    reads: dict[bytes, list[ChainLog]] = defaultdict(list)
    for log in history.in_range("RecordAccessed"):
        if not log.args["breakGlass"]:
            reads[bytes(log.args["authorization"])].append(log)
    requests = [
        log
        for log in history.in_range("ConsentGranted")
        if _is_request(log) and book.is_care_provider(str(log.args["grantee"]), log.position)
    ]
    times: list[float] = []
    for request in requests:
        grant_id = bytes(request.args["grantId"])
        until = _next_grant(by_grant[grant_id], request.position)
        access = next(
            (
                r
                for r in reads.get(grant_id, [])
                if request.position < r.position < until
                and r.args["accessor"] == request.args["grantee"]
                and r.args["patient"] == request.args["patient"]
            ),
            None,
        )
        if access is not None:
            times.append(access.timestamp - request.timestamp)
    return Retrieval(len(requests), len(times), Durations.of(times))


def _examinations(
    history: _History, book: _Book, records: _Records, categories: tuple[str, ...], window_days: int
) -> Examinations:
    codes = {category_code(c) for c in categories}
    window = window_days * DAY
    results: dict[tuple[str, bytes], list[tuple[bytes, _Record]]] = defaultdict(list)
    for record_id, r in records.by_id.items():
        if r.category in codes:
            results[(r.patient, r.category)].append((record_id, r))
    performed = duplicates = repeats = 0
    exams: list[tuple[bytes, _Record]] = []
    for log in history.in_range("RecordAnchored"):
        record_id = bytes(log.args["recordId"])
        exam = records.by_id[record_id]
        if exam.category not in codes:
            continue
        performed += 1
        exams.append((record_id, exam))
        priors = [
            (pid, p)
            for pid, p in results[(exam.patient, exam.category)]
            if p.custodian != exam.custodian
            and p.position < exam.position
            and exam.timestamp - p.timestamp <= window
        ]
        if not priors:
            continue
        if any(
            book.shareable(exam.patient, exam.custodian, pid, p.category, exam.position, exam.timestamp)
            for pid, p in priors
        ):
            duplicates += 1
        else:
            repeats += 1
    # Re-examinations avoided: visits that read another institution's recent examination result.
    grant_events: dict[bytes, list[ChainLog]] = defaultdict(list)
    for log in history.all("ConsentGranted"):
        grant_events[bytes(log.args["grantId"])].append(log)
    visits: set[tuple[str, str, bytes, Position, Position]] = set()
    for log in history.in_range("RecordAccessed"):
        record = records.by_id.get(bytes(log.args["recordId"]))
        reader = str(log.args["accessor"])
        if record is None or record.category not in codes or record.custodian == reader:
            continue
        if not book.is_care_provider(reader, log.position):
            continue  # a person's or a non-treating member's read avoids no examination
        if log.timestamp - record.timestamp > window:
            continue
        authorization = bytes(log.args["authorization"])
        if log.args["breakGlass"]:
            opened = book.sessions.get(int.from_bytes(authorization, "big"))
            if opened is None:
                continue
            pair = book.pair_sessions[(record.patient, reader)]
            start, end = opened.position, next((p for p, _s in pair if p > opened.position), END)
        else:
            grants = [g for g in grant_events.get(authorization, []) if g.position < log.position]
            if not grants:
                continue
            start = grants[-1].position
            end = _next_grant(grant_events[authorization], start)
        visits.add((reader, record.patient, record.category, start, end))
    avoided = sum(
        1
        for reader, patient, category, start, end in visits
        if not any(
            e.custodian == reader
            and e.patient == patient
            and e.category == category
            and start <= e.position < end
            for _id, e in exams
        )
    )
    return Examinations(tuple(categories), window_days, performed, duplicates, repeats, avoided)


def _unauthorised(
    history: _History, book: _Book, records: _Records, failed: Sequence[FailedTransaction], span: int
) -> UnauthorisedAccess:
    reads = history.in_range("RecordAccessed")
    without: list[str] = []
    unverifiable = 0
    for log in reads:
        a = log.args
        record_id, reader, patient = bytes(a["recordId"]), str(a["accessor"]), str(a["patient"])
        authorization, purpose = bytes(a["authorization"]), int(a["purpose"])
        if reader == patient:
            continue
        if a["breakGlass"]:
            ok = purpose == int(Purpose.ETREAT) and book.session_permits(
                int.from_bytes(authorization, "big"), log.position, log.timestamp, patient, reader
            )
        else:
            needs_header = (
                authorization == ZERO32 or _scope_of(book, authorization, log.position) == ScopeKind.CATEGORY
            )
            facts = records.header_facts(record_id, log.tx) if needs_header else None
            if needs_header and facts is None:
                unverifiable += 1
                continue
            if authorization == ZERO32:
                ok = facts is not None and facts[0] == reader
            else:
                category = facts[1] if facts is not None else None
                ok = book.permits(
                    authorization, log.position, log.timestamp, patient, reader, record_id, category, purpose
                )
        if not ok:
            without.append(log.tx)
    reverted = sum(1 for f in failed if f.contract == "EHRIndex" and f.error == "EHRAccessDenied")
    disputed = sum(
        1 for log in history.in_range("BreakGlassReviewed") if int(log.args["review"]) == Review.DISPUTED
    )
    return UnauthorisedAccess(
        reads=len(reads),
        break_glass_reads=sum(1 for log in reads if log.args["breakGlass"]),
        blocked_recorded=len(history.in_range("AccessDenied")),
        blocked_reverted=reverted,
        without_basis=tuple(without),
        unverifiable=unverifiable,
        disputed_sessions=disputed,
        span_seconds=span,
    )


def _scope_of(book: _Book, grant_id: bytes, at: Position) -> int | None:
    event = book.latest_grant(grant_id, at)
    return int(event.terms["scopeKind"]) if event is not None and event.terms is not None else None


def _claims(history: _History, failed: Sequence[FailedTransaction]) -> ClaimFigures:
    submitted_at = {bytes(log.args["claimId"]): log for log in history.all("ClaimSubmitted")}
    in_range = history.in_range("ClaimSubmitted")
    paid = history.in_range("ClaimPaid")
    turnaround = [
        log.timestamp - submitted_at[bytes(log.args["claimId"])].timestamp
        for log in paid
        if bytes(log.args["claimId"]) in submitted_at
    ]
    paid_txs = {log.tx for log in paid}
    reviewed = history.in_range("ClaimReviewed")
    refusals = [f for f in failed if f.contract == "ClaimsProcessor"]
    refused = [f for f in refusals if f.function == "submitClaim"]
    return ClaimFigures(
        submitted=len(in_range),
        paid_at_submission=sum(1 for log in in_range if log.tx in paid_txs),
        pended=sum(1 for log in in_range if int(log.args["status"]) == ClaimStatus.PENDED),
        paid=len(paid),
        paid_amount=sum(int(log.args["amount"]) for log in paid),
        approved_on_review=sum(1 for log in reviewed if int(log.args["status"]) != ClaimStatus.DENIED),
        denied=sum(1 for log in reviewed if int(log.args["status"]) == ClaimStatus.DENIED),
        appealed=len(history.in_range("ClaimAppealed")),
        refused=len(refused),
        refused_by_error=_tally(f.error for f in refused),
        other_refusals=_tally(f"{f.function}: {f.error}" for f in refusals if f.function != "submitClaim"),
        turnaround=Durations.of(turnaround),
        turnaround_reviewed=Durations.of(
            log.timestamp - submitted_at[bytes(log.args["claimId"])].timestamp
            for log in paid
            if bytes(log.args["claimId"]) in submitted_at
            and submitted_at[bytes(log.args["claimId"])].tx != log.tx
        ),
    )


def _tally(items: Iterable[str]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item] += 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _disputes(history: _History) -> Disputes:
    opened = {int(log.args["sessionId"]): log for log in history.all("BreakGlassOpened")}
    reviews = history.in_range("BreakGlassReviewed")
    review_times = [
        log.timestamp - opened[int(log.args["sessionId"])].timestamp
        for log in reviews
        if int(log.args["sessionId"]) in opened
    ]
    decisions: dict[bytes, list[ChainLog]] = defaultdict(list)
    for log in history.all("ClaimReviewed"):
        decisions[bytes(log.args["claimId"])].append(log)
    appeal_times: list[float] = []
    for appeal in history.all("ClaimAppealed"):
        decision = next(
            (d for d in decisions.get(bytes(appeal.args["claimId"]), []) if d.position > appeal.position),
            None,
        )
        if decision is not None and decision.block >= history.first:
            appeal_times.append(decision.timestamp - appeal.timestamp)
    return Disputes(
        sessions_opened=len(history.in_range("BreakGlassOpened")),
        sessions_reviewed=len(reviews),
        sessions_disputed=sum(1 for log in reviews if int(log.args["review"]) == Review.DISPUTED),
        break_glass_review=Durations.of(review_times),
        appeals=len(history.in_range("ClaimAppealed")),
        appeals_decided=len(appeal_times),
        appeal_decision=Durations.of(appeal_times),
        pooled=Durations.of([*review_times, *appeal_times]),
    )


def _units(
    history: _History,
    event: str,
    batch: bytes,
    amount: Callable[[ChainLog], int],
    keep: Callable[[Position], bool],
) -> int:
    """The units of ``event`` logs of ``batch`` whose position ``keep`` accepts."""
    return sum(
        amount(x) for x in history.all(event) if bytes(x.args["batchId"]) == batch and keep(x.position)
    )


def _recalls(history: _History, failed: Sequence[FailedTransaction]) -> RecallReach:
    recalls = [
        log
        for log in history.in_range("BatchStatusChanged")
        if int(log.args["current"]) == BatchStatus.RECALLED
    ]
    quantity = {
        bytes(log.args["batchId"]): int(log.args["quantity"]) for log in history.all("BatchCommissioned")
    }

    def plain(x: ChainLog) -> int:
        return int(x.args["quantity"])

    def shipped(x: ChainLog) -> int:
        return int(x.args["ref"]["quantity"])

    in_circulation = located = moved = 0
    recalled: set[bytes] = set()
    for recall in recalls:
        batch, at = bytes(recall.args["batchId"]), recall.position
        recalled.add(batch)

        def earlier(p: Position, at: Position = at) -> bool:
            return p < at

        def later(p: Position, at: Position = at) -> bool:
            return p > at

        in_circulation += (
            quantity.get(batch, 0)
            - _units(history, "Dispensed", batch, plain, earlier)
            - _units(history, "UnitsDestroyed", batch, plain, earlier)
        )
        located += sum(
            int(x.args["available"]) + int(x.args["inTransit"])
            for x in history.all("HolderAtRecall")
            if x.tx == recall.tx and bytes(x.args["batchId"]) == batch
        )
        moved += _units(history, "Dispensed", batch, plain, later) + _units(
            history, "Shipped", batch, shipped, later
        )
    refused = sum(
        1
        for f in failed
        if f.error == "DrugBatchNotActive"
        and len(f.args) == 2
        and bytes(f.args[0]) in recalled
        and int(f.args[1]) == BatchStatus.RECALLED
    )
    return RecallReach(len(recalls), in_circulation, located, max(located - moved, 0), moved, refused)


def _activity(history: _History, failed: Sequence[FailedTransaction]) -> Activity:
    batches = history.in_range("BatchAnchored")
    granted = history.in_range("ConsentGranted")
    return Activity(
        records_single=len(history.in_range("RecordAnchored")),
        records_amended=len(history.in_range("RecordAmended")),
        record_batches=len(batches),
        records_batched=sum(int(log.args["count"]) for log in batches),
        entered_in_error=len(history.in_range("RecordEnteredInError")),
        consents_granted=len(granted),
        consents_by_signature=sum(1 for log in granted if log.args["viaSignature"]),
        consents_revoked=len(history.in_range("ConsentRevoked")),
        transactions_failed=len(failed),
    )


# ─── Value models ───────────────────────────────────────────────────────────────────────────

MEASURED_STEP = "data request + review/authorisation + transfer/verification (request to audited access)"
MEASURED_MAPPING = (
    "The paper's four steps on chain: data request = the patient's visit consent (ConsentGranted); "
    "review/authorisation = the consent check inside the access transaction; transfer/verification = "
    "the RecordAccessed event the custodian's gateway releases the key on, checked against the anchor; "
    "feedback = the use after the access, off chain. Steps 1-3 therefore span one measured interval, "
    "request to audited access, whose before is Table 1's 45 min for the same span; the paper gives no "
    "per-step times, so that interval is one step (alpha = 1 - median / 45 min). Feedback leaves no chain "
    "timing and is taken as unchanged (alpha = 0) rather than guessed."
)


def measured_efficiency(
    retrieval_median_seconds: float | None,
) -> tuple[EfficiencyResult | None, tuple[StepTiming, ...], str]:
    """Eta from the chain's timings, by the mapping in :data:`MEASURED_MAPPING`.

    Returns:
        The result (None when it cannot be computed), the timings used (seconds), and the mapping
        note with the reason when there is no result.
    """
    before = TABLE1[0].before * MINUTE
    if retrieval_median_seconds is None:
        return None, (), MEASURED_MAPPING + " No request was followed by an access in the range: no eta."
    timing = StepTiming(MEASURED_STEP, before, float(retrieval_median_seconds))
    try:
        measured = efficiency_from_timings([timing])
    except ValueModelError as exc:
        return None, (timing,), f"{MEASURED_MAPPING} No eta: {exc}."
    alphas = (measured.efficiency.inputs.alphas[0], 0.0)
    steps = (MEASURED_STEP, "use and feedback (off chain, unchanged)")
    return efficiency_gain(EfficiencyInputs(alphas, steps)), (timing,), MEASURED_MAPPING


def _value_models(retrieval: Retrieval) -> ValueModels:
    measured, steps, note = measured_efficiency(retrieval.times.median)
    table1 = TABLE1[0]
    return ValueModels(
        paper_efficiency=efficiency_gain(PAPER_EFFICIENCY),
        printed_eta=PAPER_PRINTED_ETA,
        eta_remark=PAPER_ETA_REMARK,
        cost=cost_model(PAPER_COST),
        printed_cost_after=PAPER_PRINTED_COST_AFTER,
        printed_saving_rate=PAPER_PRINTED_SAVING_RATE,
        cost_unit=PAPER_COST_UNIT,
        measured=measured,
        measured_steps=steps,
        measured_note=note,
        table1_saving=1 - table1.paper_after / table1.before,
    )


# ─── The table ──────────────────────────────────────────────────────────────────────────────


def _before_text(baseline: Baseline | None) -> str:
    if baseline is None:
        return "—"
    if baseline.unit == "share":
        return _pct(baseline.before)
    return f"{baseline.before:g} {baseline.unit}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return "—"
    return f"{(after - before) / before * 100:+.1f} %"


def _span(seconds: float | None, unit: str) -> str:
    if seconds is None:
        return "—"
    scale = {"s": 1, "min": MINUTE, "h": HOUR, "days": DAY}[unit]
    return f"{seconds / scale:.1f} {unit}"


def _unit_for(seconds: float | None) -> str:
    if seconds is None or seconds < 2 * HOUR:
        return "min"
    return "h" if seconds < 2 * DAY else "days"


def _n(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else word + ('es' if word.endswith('ch') else 's')}"


def _money(units: int) -> str:
    return f"{units / 10**TOKEN_DECIMALS:,.2f}"


def _rows(
    basis: str,
    retrieval: Retrieval,
    exams: Examinations,
    access: UnauthorisedAccess,
    claims: ClaimFigures,
    disputes: Disputes,
    recalls: RecallReach,
    activity: Activity,
) -> tuple[KpiRow, ...]:
    base = {b.key: b for b in TABLE1}
    source = "Table 1 (2023)"

    def row(
        key: str,
        indicator: str,
        after: str,
        after_value: float | None,
        unit: str,
        baseline: Baseline | None = None,
        row_basis: str = basis,
    ) -> KpiRow:
        return KpiRow(
            key=key,
            indicator=indicator,
            before=_before_text(baseline),
            after=after,
            change=_change(baseline.before if baseline else None, after_value),
            before_value=baseline.before if baseline else None,
            after_value=after_value,
            paper_after_value=baseline.paper_after if baseline else None,
            unit=unit,
            basis=row_basis,
            source=source if baseline else "",
        )

    t = retrieval.times
    median_min = t.median / MINUTE if t.median is not None else None
    retrieval_text = (
        f"{_span(t.median, 'min')} (p90 {_span(t.p90, 'min')}; "
        f"{retrieval.fulfilled} of {retrieval.requests} requests)"
        if t.median is not None
        else f"— (no access after any of {retrieval.requests} requests)"
    )
    d = disputes.pooled
    dispute_days = d.median / DAY if d.median is not None else None
    per_quarter = access.incidents_per_quarter
    c = claims.turnaround
    turnaround_unit = _unit_for(c.median)
    paid_at_once = claims.paid_at_submission / claims.submitted if claims.submitted else None
    bg, ap = disputes.break_glass_review, disputes.appeal_decision
    rc = claims.turnaround_reviewed
    reviewed_unit = _unit_for(rc.median)
    reviewed_text = (
        f"; the {rc.count} paid after review: median {_span(rc.median, reviewed_unit)}" if rc.count else ""
    )
    refused = ", ".join(f"{n} {e}" for e, n in claims.refused_by_error) or "none"
    return (
        row(
            "retrieval",
            base["retrieval"].indicator + " (median)",
            retrieval_text,
            median_min,
            "min",
            base["retrieval"],
        ),
        row(
            "duplicate_exams",
            base["duplicate_exams"].indicator,
            f"{_pct(exams.rate)} ({exams.duplicates} of {exams.performed} examinations)",
            exams.rate,
            "share",
            base["duplicate_exams"],
        ),
        row(
            "exam_cost",
            base["exam_cost"].indicator,
            "— (services are salted commitments)",
            None,
            "CNY",
            base["exam_cost"],
            "not on chain",
        ),
        row(
            "unauthorised",
            base["unauthorised"].indicator + " (reads without a valid basis)",
            f"{per_quarter:.1f} per quarter ({access.succeeded} of {access.reads} audited reads)"
            if per_quarter is not None
            else f"{access.succeeded} of {access.reads} audited reads",
            per_quarter,
            "per quarter",
            base["unauthorised"],
        ),
        row(
            "disputes",
            base["disputes"].indicator + " (median, all disputes)",
            f"{_span(d.median, 'days')} ({_n(d.count, 'dispute')})"
            if d.median is not None
            else "— (none decided)",
            dispute_days,
            "days",
            base["disputes"],
        ),
        row(
            "break_glass_review",
            "  break-glass session opened to reviewed (median)",
            f"{_span(bg.median, 'days')} ({disputes.sessions_reviewed} reviewed, "
            f"{disputes.sessions_disputed} disputed)",
            bg.median / DAY if bg.median is not None else None,
            "days",
        ),
        row(
            "appeal_decision",
            "  claim appeal to decision (median)",
            f"{_span(ap.median, 'days')} ({disputes.appeals_decided} decided)",
            ap.median / DAY if ap.median is not None else None,
            "days",
        ),
        row(
            "access_blocked",
            "Unauthorised access attempts: blocked / succeeded",
            f"{access.blocked} blocked / {access.succeeded} succeeded",
            float(access.blocked),
            "attempts",
        ),
        row(
            "claim_turnaround",
            "Claim turnaround, submission to payment (median)",
            f"{_span(c.median, turnaround_unit)} (p90 {_span(c.p90, turnaround_unit)}; "
            f"{_pct(paid_at_once)} paid at submission{reviewed_text})",
            c.median / MINUTE if c.median is not None else None,
            "min",
        ),
        row(
            "recall_reach",
            "Recall reach (recalled units located and blocked)",
            f"{_pct(recalls.reach)} ({recalls.blocked} of {recalls.in_circulation} units, "
            f"{_n(recalls.recalls, 'recall')})"
            if recalls.recalls
            else "— (no recall)",
            recalls.reach,
            "share",
        ),
        row(
            "records",
            "Records anchored",
            f"{activity.records_single} single ({_n(activity.records_amended, 'amendment')}), "
            f"{activity.records_batched} in {_n(activity.record_batches, 'batch')}",
            float(activity.records_single + activity.records_batched),
            "records",
        ),
        row(
            "consents",
            "Consents granted / revoked",
            f"{activity.consents_granted} granted ({activity.consents_by_signature} signed) / "
            f"{activity.consents_revoked} revoked",
            float(activity.consents_granted),
            "consents",
        ),
        row(
            "claims",
            "Claims paid / denied / refused",
            f"{claims.paid} paid ({_money(claims.paid_amount)}) / {claims.denied} denied / "
            f"{claims.refused} refused",
            float(claims.paid),
            "claims",
        ),
        row("claims_refused", "  refused by reason", refused, float(claims.refused), "claims"),
        row(
            "repeat_exams",
            "  examinations repeating a recent result elsewhere, shareable or not",
            f"{_pct(exams.repeat_rate)} "
            f"({exams.duplicates + exams.repeats_not_shareable} of {exams.performed})",
            exams.repeat_rate,
            "share",
        ),
        row(
            "exams_avoided",
            "  re-examinations avoided (a recent result elsewhere read instead)",
            _n(exams.avoided, "visit"),
            float(exams.avoided),
            "visits",
        ),
    )
