"""FHIR exports: grants as Consent, accesses and break-glass as AuditEvent, claims as Claim and
ClaimResponse.

Every FHIR document the SDK writes is built here, from the clients' dataclasses (this module sits
above the clients and reads them; clients never import it).

Version: FHIR R4B (4.3.0), validated with fhir.resources' R4B models. The four resources exported
here (Consent, AuditEvent, Claim, ClaimResponse) did not change between R4 (4.0.1) and R4B, so an R4
system reads them as they are. People and institutions appear only as their pseudonymous chain
addresses, as identifiers. Code systems are the standard ones (docs/fhir.md lists them); the
consortium's own ``urn:medchain:*`` systems are used only for things no standard names: the chain's
record, grant, claim, plan, dispense and session ids, each written the same way in every resource
that names it, so that a Consent, an AuditEvent and a Claim about one record can be joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from medchain.claims import CODE_SYSTEMS, ClaimEvidence, ClaimTimeline, ClaimView, CoveredService
from medchain.consent import BreakGlassSession, Grant
from medchain.ehr import AccessEvent, DeniedAccess
from medchain.errors import MedChainError
from medchain.types import NO_END, Actions, ClaimStatus, GrantStatus, Purpose, ScopeKind, category_text

ADDRESS_SYSTEM = "urn:ietf:rfc:3986"
_ACTION_CODES = {Actions.READ: "access", Actions.APPEND: "correct", Actions.SHARE: "disclose"}
_STATUS = {
    GrantStatus.ACTIVE: "active",
    GrantStatus.PENDING: "proposed",
    GrantStatus.REVOKED: "inactive",
    GrantStatus.EXPIRED: "inactive",
    GrantStatus.LAPSED: "inactive",
    GrantStatus.NONE: "entered-in-error",
}
V3_PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
AUDIT_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
CLAIM_INFO_CATEGORY = "http://terminology.hl7.org/CodeSystem/claiminformationcategory"

# Identifier systems of the consortium (no standard system names these chain ids).
RECORD_SYSTEM = "urn:medchain:record"
CONSENT_SYSTEM = "urn:medchain:consent"
CLAIM_SYSTEM = "urn:medchain:claim"
CLAIM_RESPONSE_SYSTEM = "urn:medchain:claim-response"
PLAN_SYSTEM = "urn:medchain:plan"
DISPENSE_SYSTEM = "urn:medchain:dispense"
SESSION_SYSTEM = "urn:medchain:break-glass-session"
DENIAL_REASON_SYSTEM = "urn:medchain:denial-reason"

# Billing, product and diagnosis code systems (CoveredService.system names CPT, HCPCS or the
# consortium schedule, medchain.claims.CODE_SYSTEMS).
CPT = CODE_SYSTEMS["cpt"]
HCPCS = CODE_SYSTEMS["hcpcs"]
GTIN_SYSTEM = "https://www.gs1.org/gtin"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"


class FhirExportError(MedChainError):
    """A resource built for export did not validate against FHIR."""


def chain_identifier(chain_id: int, address: str) -> dict[str, str]:
    """A pseudonymous identifier for an account: its CAIP-10 URI (``eip155:<chain>:<address>``)."""
    return {"system": ADDRESS_SYSTEM, "value": f"urn:eip155:{chain_id}:{address}"}


def record_identifier(record_id: bytes) -> dict[str, str]:
    """The one identifier of an EHRIndex record, in every resource that names it."""
    return {"system": RECORD_SYSTEM, "value": "0x" + record_id.hex()}


def _instant(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _purpose_coding(p: Purpose) -> dict[str, str]:
    return {"system": V3_PURPOSE, "code": p.name, "display": p.display}


def consent_resource(grant: Grant, chain_id: int, recorded_at: int | None = None) -> dict[str, Any]:
    """The grant as a validated FHIR R4 Consent (JSON-ready dict)."""
    t = grant.terms
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "reference": {"identifier": chain_identifier(chain_id, t.grantee)},
            }
        ],
        "action": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": code}]}
            for flag, code in _ACTION_CODES.items()
            if t.actions & flag
        ],
        "purpose": [_purpose_coding(p) for p in Purpose.from_mask(t.purposes)],
    }
    period: dict[str, str] = {}
    if t.not_before:
        period["start"] = _instant(t.not_before)
    if t.not_after != NO_END:
        period["end"] = _instant(t.not_after)
    if period:
        provision["period"] = period
    if t.scope_kind == ScopeKind.CATEGORY:
        provision["class"] = [
            {"system": "http://hl7.org/fhir/resource-types", "code": category_text(t.scope_value)}
        ]
    elif t.scope_kind == ScopeKind.RECORD:
        provision["data"] = [
            {
                "meaning": "instance",
                "reference": {"identifier": record_identifier(t.scope_value)},
            }
        ]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": grant.id.hex()[:64],
        "identifier": [{"system": CONSENT_SYSTEM, "value": "0x" + grant.id.hex()}],
        "status": _STATUS[grant.status],
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": {"identifier": chain_identifier(chain_id, t.patient)},
        "performer": [{"identifier": chain_identifier(chain_id, grant.actor)}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": provision,
    }
    if recorded_at is not None:
        resource["dateTime"] = _instant(recorded_at)
    return _validated(Consent, resource)


AUDIT_OUTCOMES = {"success": "0", "minor-failure": "4", "serious-failure": "8"}
"""R4 AuditEvent.outcome codes used here: a refused access is a minor failure (an expected,
handled refusal, like an HTTP 403), not a system error."""


def audit_event_resource(
    *,
    chain_id: int,
    observer: str,
    patient: str,
    accessor: str,
    purpose: Purpose,
    recorded_at: int,
    record_id: bytes,
    break_glass: bool,
    outcome: str = "success",
    outcome_desc: str | None = None,
) -> dict[str, Any]:
    """An attempt to read a patient's record as a validated FHIR R4 AuditEvent.

    DICOM "Patient Record" (DCM 110110) event, subtype the REST ``read`` interaction, action R;
    ``outcome`` 0 for an audited access, 4 for a refused one; a break-glass read carries the BTG
    purpose beside ETREAT. The record appears by its chain id (:data:`RECORD_SYSTEM`).
    """
    if outcome not in AUDIT_OUTCOMES:
        raise FhirExportError(
            f"unknown audit outcome {outcome!r}; expected one of {', '.join(AUDIT_OUTCOMES)}"
        )
    purposes = [_purpose_coding(purpose)] + ([_btg_coding()] if break_glass else [])
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": DICOM, "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": RESTFUL_INTERACTION, "code": "read", "display": "read"}],
        "action": "R",
        "recorded": _instant(recorded_at),
        "outcome": AUDIT_OUTCOMES[outcome],
        "purposeOfEvent": [{"coding": [c]} for c in purposes],
        "agent": [_requestor(chain_id, accessor, purposes)],
        "source": _source(chain_id, observer),
        "entity": [
            _patient_entity(chain_id, patient),
            {
                "what": {"identifier": record_identifier(record_id)},
                "type": {"system": AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            },
        ],
    }
    if outcome_desc:
        resource["outcomeDesc"] = outcome_desc
    return _validated(AuditEvent, resource)


def _btg_coding() -> dict[str, str]:
    return {"system": V3_PURPOSE, "code": "BTG", "display": "break the glass"}


def _requestor(chain_id: int, who: str, purposes: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "who": {"identifier": chain_identifier(chain_id, who)},
        "requestor": True,
        "purposeOfUse": [{"coding": [c]} for c in purposes],
    }


def _source(chain_id: int, observer: str) -> dict[str, Any]:
    return {
        "observer": {"identifier": chain_identifier(chain_id, observer)},
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }


def _patient_entity(chain_id: int, patient: str) -> dict[str, Any]:
    return {
        "what": {"identifier": chain_identifier(chain_id, patient)},
        "type": {"system": AUDIT_ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def _validated(model: Any, resource: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = model.model_validate(resource)
    except ValidationError as exc:
        raise FhirExportError(f"{resource['resourceType']} export is not valid FHIR: {exc}") from exc
    result: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True)
    return result


def break_glass_audit_event(session: BreakGlassSession, chain_id: int, observer: str) -> dict[str, Any]:
    """An emergency override (a break-glass session opened) as a FHIR AuditEvent.

    DICOM "Security Alert" (DCM 110113) with subtype "Emergency Override Started" (DCM 110127),
    action E; purposes ETREAT and BTG; the session appears by its id (:data:`SESSION_SYSTEM`).
    """
    purposes = [_purpose_coding(Purpose.ETREAT), _btg_coding()]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": DICOM, "code": "110113", "display": "Security Alert"},
        "subtype": [{"system": DICOM, "code": "110127", "display": "Emergency Override Started"}],
        "action": "E",
        "recorded": _instant(session.opened_at),
        "outcome": AUDIT_OUTCOMES["success"],
        "purposeOfEvent": [{"coding": [c]} for c in purposes],
        "agent": [_requestor(chain_id, session.institution, purposes)],
        "source": _source(chain_id, observer),
        "entity": [
            _patient_entity(chain_id, session.patient),
            {
                "what": {"identifier": {"system": SESSION_SYSTEM, "value": str(session.id)}},
                "type": {"system": AUDIT_ENTITY_TYPE, "code": "4", "display": "Other"},
            },
        ],
    }
    return _validated(AuditEvent, resource)


def access_audit_events(events: list[AccessEvent], chain_id: int, observer: str) -> list[dict[str, Any]]:
    """Audited accesses (``EHRClient.access_history``) as validated FHIR AuditEvents; break-glass
    reads carry BTG. ``observer`` is the EHRIndex address that recorded them."""
    return [
        audit_event_resource(
            chain_id=chain_id,
            observer=observer,
            patient=e.patient,
            accessor=e.accessor,
            purpose=e.purpose,
            recorded_at=e.timestamp,
            record_id=e.record_id,
            break_glass=e.break_glass,
        )
        for e in events
    ]


def denied_audit_events(events: list[DeniedAccess], chain_id: int, observer: str) -> list[dict[str, Any]]:
    """Refused attempts (``EHRClient.denied_attempts``) as FHIR AuditEvents with a failure outcome
    (4, a handled refusal) and the reason in ``outcomeDesc``."""
    return [
        audit_event_resource(
            chain_id=chain_id,
            observer=observer,
            patient=e.patient,
            accessor=e.accessor,
            purpose=e.purpose,
            recorded_at=e.timestamp,
            record_id=e.record_id,
            break_glass=False,
            outcome="minor-failure",
            outcome_desc="access denied: no consent permitted this read (EHRIndex AccessDenied)",
        )
        for e in events
    ]


_DISPOSITION = {
    ClaimStatus.PAID: "Paid",
    ClaimStatus.APPROVED: "Approved; payment waits for the plan's pool to be funded",
    ClaimStatus.PENDED: "Pended for the insurer's review",
    ClaimStatus.APPEALED: "Appealed; waiting for the insurer's review",
    ClaimStatus.DENIED: "Denied",
}


def claim_resources(
    claim: ClaimView,
    *,
    insurer: str,
    chain_id: int,
    service: CoveredService,
    evidence: ClaimEvidence,
    timeline: ClaimTimeline,
    diagnoses: Sequence[tuple[str, str]] = (),
    currency: str = "USD",
    decimals: int = 6,
) -> dict[str, Any]:
    """A claim as a validated FHIR Claim and its adjudication as a ClaimResponse.

    Args:
        claim: The claim as the chain holds it (``ClaimsClient.claim``).
        service: The covered service billed (its code and code system come from the plan's table).
        evidence: What the contract checked (``ClaimsClient.evidence``): the Claim cites exactly
            these records (or the dispense), never a caller's list.
        timeline: Review, appeal and payment times (``ClaimsClient.timeline``).
        diagnoses: (system, code) pairs, e.g. ``(ICD10, "J18.9")``, from the provider's record.

    The ClaimResponse points back to the Claim (``request``), has its own identifier, reports the
    processing state in ``outcome`` (``complete`` once adjudicated, paid or denied; ``queued``
    while pended or appealed) and the decision in ``disposition``, adjudicates the item
    (submitted, eligible, deductible, copay, benefit) and carries ``payment`` once paid.
    """
    claim_ident = {"system": CLAIM_SYSTEM, "value": "0x" + claim.id.hex()}
    created = _instant(claim.submitted_at)

    def money(units: int) -> dict[str, Any]:
        return {"value": units / 10**decimals, "currency": currency}

    def category(code: str) -> dict[str, Any]:
        return {"coding": [{"system": ADJUDICATION, "code": code}]}

    info_category = {"coding": [{"system": CLAIM_INFO_CATEGORY, "code": "info", "display": "Information"}]}
    supporting = [
        {
            "sequence": i + 1,
            "category": info_category,
            "valueReference": {"identifier": record_identifier(h.record_id)},
        }
        for i, h in enumerate(evidence.headers)
    ]
    if evidence.dispense_id is not None:
        supporting.append(
            {
                "sequence": len(supporting) + 1,
                "category": info_category,
                "valueReference": {
                    "identifier": {"system": DISPENSE_SYSTEM, "value": "0x" + evidence.dispense_id.hex()}
                },
            }
        )
    product = [{"system": service.system, "code": service.code}]
    if service.gtin:
        product.append({"system": GTIN_SYSTEM, "code": f"{service.gtin:014d}"})
    pharmacy = not evidence.headers and evidence.dispense_id is not None
    claim_type = {"coding": [{"system": CLAIM_TYPE, "code": "pharmacy" if pharmacy else "professional"}]}
    item: dict[str, Any] = {
        "sequence": 1,
        "productOrService": {"coding": product},
        "servicedDate": created[:10],
        "net": money(claim.billed),
    }
    if supporting:
        item["informationSequence"] = [s["sequence"] for s in supporting]
    if diagnoses:
        item["diagnosisSequence"] = list(range(1, len(diagnoses) + 1))
    fhir_claim: dict[str, Any] = {
        "resourceType": "Claim",
        "identifier": [claim_ident],
        "status": "active",
        "type": claim_type,
        "use": "claim",
        "patient": {"identifier": chain_identifier(chain_id, claim.patient)},
        "created": created,
        "provider": {"identifier": chain_identifier(chain_id, claim.provider)},
        "insurer": {"identifier": chain_identifier(chain_id, insurer)},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [
            {
                "sequence": 1,
                "focal": True,
                "coverage": {"identifier": {"system": PLAN_SYSTEM, "value": str(claim.plan_id)}},
            }
        ],
        "item": [item],
        "total": money(claim.billed),
    }
    if supporting:
        fhir_claim["supportingInfo"] = supporting
    if diagnoses:
        fhir_claim["diagnosis"] = [
            {"sequence": i + 1, "diagnosisCodeableConcept": {"coding": [{"system": system, "code": code}]}}
            for i, (system, code) in enumerate(diagnoses)
        ]

    status = claim.status
    adjudicated = status in (ClaimStatus.PAID, ClaimStatus.APPROVED, ClaimStatus.DENIED)
    eligible = min(claim.billed, service.allowed_amount)
    adjudication: list[dict[str, Any]] = [
        {"category": category("submitted"), "amount": money(claim.billed)},
        {"category": category("eligible"), "amount": money(eligible)},
    ]
    if status == ClaimStatus.DENIED:
        reason = timeline.denial_reason
        denied: dict[str, Any] = {"category": category("benefit"), "amount": money(0)}
        if reason is not None:
            denied["reason"] = {"coding": [{"system": DENIAL_REASON_SYSTEM, "code": str(reason)}]}
        adjudication.append(denied)
    elif adjudicated:
        adjudication += [
            {"category": category("deductible"), "amount": money(claim.deductible_part)},
            {"category": category("copay"), "amount": money(claim.patient_share)},
            {"category": category("benefit"), "amount": money(claim.amount)},
        ]
    disposition = _DISPOSITION.get(status, status.name.lower())
    if status == ClaimStatus.DENIED and timeline.denial_reason is not None:
        disposition = f"Denied (reason {timeline.denial_reason})"
    decided_at = timeline.paid_at or timeline.reviewed_at or claim.submitted_at
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": CLAIM_RESPONSE_SYSTEM, "value": "0x" + claim.id.hex()}],
        "status": "active",
        "type": claim_type,
        "use": "claim",
        "patient": fhir_claim["patient"],
        "created": _instant(decided_at),
        "insurer": fhir_claim["insurer"],
        "requestor": fhir_claim["provider"],
        "request": {"identifier": claim_ident},
        "outcome": "complete" if adjudicated else "queued",
        "disposition": disposition,
        "item": [{"itemSequence": 1, "adjudication": adjudication}],
        "total": [
            {"category": category("submitted"), "amount": money(claim.billed)},
            {
                "category": category("benefit"),
                "amount": money(claim.amount if adjudicated and status != ClaimStatus.DENIED else 0),
            },
        ],
    }
    if status == ClaimStatus.PAID and timeline.paid_at is not None:
        response["payment"] = {
            "type": {"coding": [{"system": PAYMENT_TYPE, "code": "complete"}]},
            "date": _instant(timeline.paid_at)[:10],
            "amount": money(timeline.paid_amount),
        }
    return {"claim": _validated(Claim, fhir_claim), "claimResponse": _validated(ClaimResponse, response)}
