"""The scenario's model inputs: how often things happen, how long they take, what is billed, which
medicines move, and the FHIR resources anchored (encrypted off chain; only salted digests on chain).

Every figure here is an input of the simulation, not a measurement: the report labels what comes
out of it as simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from biip.checksums import gs1_standard_check_digit

from medchain.claims import CODE_SYSTEMS, PlanFile, PlanService

DAY = 86_400
HOUR = 3_600
MINUTE = 60
SLOT = 5 * MINUTE
"""The simulation's time resolution: every step happens on a five-minute mark (steps due at the
same mark share a block)."""
USD = 10**6
"""Settlement-token units per currency unit (6 decimals)."""


@dataclass(frozen=True)
class Workload:
    """Rates and shares that drive the simulated activity (per patient per day unless stated)."""

    primary_visit_rate: float = 0.07
    """A visit to the patient's community clinic."""
    referral_share: float = 0.35
    """Of clinic visits: referred on to a specialist or tertiary hospital (1 to 5 days later)."""
    transfer_share: float = 0.25
    """Of specialist visits: transferred on to a tertiary hospital (1 to 4 days later)."""
    imaging_share: float = 0.6
    """Of hospital visits: an imaging result (DiagnosticReport) is needed."""
    lab_order_share: float = 0.4
    """Of clinic visits: a lab panel is ordered (anchored in the laboratory's nightly batch)."""
    prescription_share: float = 0.45
    """Of clinic visits (hospital visits: two thirds of it): a medicine is dispensed."""
    emergency_rate: float = 0.003
    """An emergency at a tertiary hospital (break-glass access)."""
    sharing_share: float = 0.85
    """Patients whose visit consents let the visiting institution read (the others only let it
    write its own records: it cannot see earlier results and repeats examinations)."""
    payment_consent_share: float = 0.9
    """Patients who let their insurer see encounters and dispenses for payment (the others pay
    themselves: no claims)."""
    revoke_share: float = 0.3
    """Of hospital visits: the patient revokes the hospital's consent 1 to 3 days later."""
    follow_up_attempt_share: float = 0.5
    """Of revocations: the hospital tries to open the patient's record again afterwards."""
    snoop_rate: float = 0.3
    """Per day: some institution tries to read a record it has no consent for."""
    dispute_share: float = 0.25
    """Of break-glass sessions: the review disputes it."""
    deny_share: float = 0.25
    """Of claims pended for review: the insurer denies it."""
    appeal_share: float = 0.6
    """Of denied claims: the provider appeals."""
    appeal_approve_share: float = 0.6
    """Of appeals: the insurer approves on second review."""
    history_share: float = 0.4
    """Patients who join with a recent scan from one of the hospitals (anchored when the alliance
    onboards their records, the evening before the first day)."""
    recent_result_days: int = 60
    """An earlier result of the same kind at most this old makes a new examination a repeat."""
    visit_consent_days: int = 30
    """How long a visit consent lasts."""
    read_delay_minutes: tuple[int, int, int] = (5, 10, 40)
    """Check-in to the first audited read: (least, most likely, most) minutes, triangular."""
    review_delay_days: tuple[int, int] = (1, 4)
    """Submission of a pended claim to the insurer's review, in days."""


WORKLOAD = Workload()

FOLLOW_UP_DAYS = 21
"""After the last simulated day, follow-up work already started (claim reviews, appeals,
break-glass reviews, deliveries) is finished for at most this many days; no new care starts."""

# ─── Billing ────────────────────────────────────────────────────────────────────────────────────

OFFICE_VISIT = "99213"
CONSULTATION = "99244"
CT_HEAD = "70450"
DRUG = "J3490"


@dataclass(frozen=True)
class Product:
    """A medicine of the scenario: its GTIN, who makes it, and what a dispensed pack is billed."""

    gtin: str
    name: str
    manufacturer: int
    """Index of its manufacturer in the alliance."""
    allowed: int


def _gtin(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


PRODUCTS = (
    Product(_gtin("0690123400011"), "amlodipine 5 mg, 28 tablets", 0, 25 * USD),
    Product(_gtin("0690123400028"), "metformin 500 mg, 60 tablets", 0, 18 * USD),
    Product(_gtin("0690456700013"), "amoxicillin 500 mg, 21 capsules", 1, 32 * USD),
)


def plan_files() -> tuple[PlanFile, PlanFile]:
    """The two insurers' coverage tables and terms (unsalted; salted when the plan is created)."""
    cpt, hcpcs = CODE_SYSTEMS["cpt"], CODE_SYSTEMS["hcpcs"]
    services = (
        PlanService(OFFICE_VISIT, 150 * USD, 0, "office visit, established patient", cpt),
        PlanService(CONSULTATION, 280 * USD, 0, "office consultation, specialist", cpt),
        PlanService(CT_HEAD, 900 * USD, 0, "CT head without contrast", cpt),
        *(PlanService(DRUG, p.allowed, int(p.gtin), f"dispensed pack: {p.name}", hcpcs) for p in PRODUCTS),
    )
    basic = PlanFile(services, 100 * USD, 2000, 1_000 * USD, 8_000 * USD, 500 * USD)
    mutual = PlanFile(services, 50 * USD, 1000, 1_500 * USD, 10_000 * USD, 400 * USD)
    return basic, mutual


# ─── FHIR resources (what the custodians encrypt; never on chain) ───────────────────────────────


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def _subject(patient: str, marker: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient}", "display": f"{marker} {patient}"}


def encounter(patient: str, provider: str, start: int, kind: str, marker: str) -> dict[str, Any]:
    """An ambulatory encounter (the billing evidence of a claim)."""
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": kind}],
        "subject": _subject(patient, marker),
        "period": {"start": _when(start), "end": _when(start + 20 * MINUTE)},
        "serviceProvider": {"display": provider},
    }


def vital_signs(patient: str, at: int, value: float, marker: str) -> dict[str, Any]:
    """A blood pressure reading taken at a clinic visit."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic BP"}]},
        "subject": _subject(patient, marker),
        "effectiveDateTime": _when(at),
        "valueQuantity": {"value": value, "unit": "mm[Hg]"},
    }


def lab_result(patient: str, at: int, value: float, marker: str) -> dict[str, Any]:
    """A laboratory panel result (anchored in the laboratory's nightly Merkle batch)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
        "subject": _subject(patient, marker),
        "effectiveDateTime": _when(at),
        "valueQuantity": {"value": value, "unit": "mmol/L"},
        "note": [{"text": f"fasting sample; {marker}"}],
    }


def imaging_report(patient: str, at: int, finding: str, marker: str) -> dict[str, Any]:
    """An imaging examination's report: the result a later visit can read instead of repeating it."""
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24725-4", "display": "CT Head"}]},
        "subject": _subject(patient, marker),
        "effectiveDateTime": _when(at),
        "conclusion": f"{finding} ({marker})",
    }


FINDINGS = (
    "no acute intracranial abnormality",
    "small chronic lacunar infarct",
    "mild chronic small vessel disease",
    "maxillary sinus mucosal thickening",
)
