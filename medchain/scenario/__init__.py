"""A seeded regional-alliance scenario at consortium scale, on a local Anvil (issue 11, item 1).

:func:`run_scenario` deploys the suite, builds the alliance through the registry's governance (the
founding regulator and the tertiary hospitals at bootstrap, everyone else admitted by
credit-weighted votes), and runs a reproducible workload over simulated days: visits and
referrals, signed consents and revocations, records anchored singly and in a laboratory's nightly
Merkle batches, audited cross-institution reads, repeat examinations avoided or done, reads
attempted without consent, break-glass sessions and their reviews, medicines from manufacturer to
pharmacy and dispensed, one recall, claims paid, pended, reviewed and appealed, and every kind of
fraudulent claim the contract refuses. Every step uses the SDK: its clients' methods where the next
step needs the result at once (deployment, lab batches, dispenses, the recall, reviews, appeals,
break-glass), its clients' contracts and types for the bulk steps, which are batched into blocks
(:mod:`medchain.scenario._chain`). Chain time is the simulated time.

Reproducibility: one seed gives the same run: the same keys, the same steps at the same simulated
times, the same counts. Only what the SDK draws at random on purpose differs between runs (record
salts, data keys and CIDs, dispense salts), and so do the ids hashed from them.

What is on chain, and how a report finds each step from chain data alone
------------------------------------------------------------------------
Times are block timestamps; the simulated day starts at ``ScenarioResult.started_at`` (UTC).

- **Cross-institution retrieval (request to audited access).** A visit starts with the *request*:
  at check-in the patient signs a visit consent for the institution (scope all, READ|APPEND for
  TREAT, or APPEND only for a patient who does not share; ``notAfter`` 30 days on), which the
  institution submits: a ``ConsentGranted`` event (``viaSignature`` true) whose ``grantId`` is
  the (patient, institution, all) grant. The *access* is the ``RecordAccessed`` event of the
  clinician opening the record, whose ``authorization`` is that same grant id (``breakGlass``
  false). Retrieval time = the time of each such ``RecordAccessed`` minus the time of the latest
  ``ConsentGranted`` of its ``authorization`` grant id before it (a returning patient's new
  check-in re-grants the same id; a visit's reads happen together, a few minutes after its
  check-in). Nothing else grants institutions READ for TREAT, so every such access is
  cross-institution and follows a check-in.
- **Examinations and repeats.** An imaging examination is a ``RecordAnchored`` of category
  ``DiagnosticReport`` at or after ``ScenarioResult.first_day_block`` (only hospitals anchor them,
  one per examination; those anchored before that block are earlier results onboarded with the
  patient). It is a *repeat* when another ``DiagnosticReport`` of the same patient was anchored
  within ``Workload.recent_result_days`` (60) before it. Duplicate examination rate = repeats /
  examinations. An examination avoided by sharing is a ``RecordAccessed`` (``breakGlass`` false)
  of a ``DiagnosticReport`` record (its category is in its ``RecordAnchored``).
- **Unauthorised access.** Blocked: every read tried without consent is refused and recorded
  on chain as an ``AccessDenied`` event (``EHRIndex.tryAccessRecord``, through
  :meth:`Simulation.attempt_read_without_consent`). Succeeded: a
  ``RecordAccessed`` the consents did not permit: none can exist; disputed break-glass sessions
  (``BreakGlassReviewed`` with review Disputed) are emergency reads judged unjustified afterwards.
- **Claim turnaround (submission to payment).** ``ClaimSubmitted`` to ``ClaimPaid`` of the same
  ``claimId`` (the same transaction when paid at once).
- **Dispute handling.** Break-glass: ``BreakGlassOpened`` to ``BreakGlassReviewed`` of the same
  ``sessionId``. Claim appeals: ``ClaimAppealed`` to the next ``ClaimReviewed`` of that claim.
- **Recall reach.** ``HolderAtRecall`` events of the recall transaction (available + in transit
  per holder) against the units not yet dispensed (``BatchCommissioned`` quantity minus
  ``Dispensed`` quantities of that batch before the recall); afterwards a dispense from the batch
  is refused (``DrugBatchNotActive``, a failed transaction).
- **Counts.** Records anchored: ``RecordAnchored`` plus ``BatchAnchored.count``; consents:
  ``ConsentGranted`` / ``ConsentRevoked``; claims paid: ``ClaimPaid``; claims refused by reason:
  the failed ``submitClaim`` transactions to ClaimsProcessor, their errors by replay (every
  fraudulent claim is sent and mined, like every refused call of the scenario).
"""

from medchain.scenario._chain import ScenarioError, SimChain
from medchain.scenario._engine import (
    DEFAULT_DAYS,
    DEFAULT_PATIENTS,
    FRAUD_KINDS,
    MAX_DAYS,
    MAX_PATIENTS,
    Progress,
    ScenarioConfig,
    Simulation,
    check_manifest_target,
    check_node,
    run_scenario,
)
from medchain.scenario._model import WORKLOAD, Workload
from medchain.scenario._progress import ProgressBars
from medchain.scenario._result import (
    ClaimTiming,
    Exam,
    RecallTiming,
    Retrieval,
    ScenarioResult,
    SessionTiming,
    SimulatorCounts,
    SimulatorTimings,
)

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_PATIENTS",
    "FRAUD_KINDS",
    "MAX_DAYS",
    "MAX_PATIENTS",
    "WORKLOAD",
    "ClaimTiming",
    "Exam",
    "Progress",
    "ProgressBars",
    "RecallTiming",
    "Retrieval",
    "ScenarioConfig",
    "ScenarioError",
    "ScenarioResult",
    "SessionTiming",
    "SimChain",
    "Simulation",
    "SimulatorCounts",
    "SimulatorTimings",
    "Workload",
    "check_manifest_target",
    "check_node",
    "run_scenario",
]
