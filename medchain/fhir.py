"""FHIR exports: grants as Consent, accesses and break-glass as AuditEvent, claims as Claim and
ClaimResponse.

Every FHIR document the SDK writes is built here, from the clients' dataclasses (this module sits
above the clients and reads them; clients never import it).

Resources are built as plain JSON and validated with fhir.resources (its R4B package, the
R4-compatible release of FHIR 4; Consent and AuditEvent have the R4 shape there). People and
institutions appear only as their pseudonymous chain addresses, as identifiers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from medchain.claims import ClaimView, CoveredService
from medchain.consent import BreakGlassSession, Grant
from medchain.ehr import AccessEvent, AnchoredRecord
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


class FhirExportError(MedChainError):
    """A resource built for export did not validate against FHIR."""


def chain_identifier(chain_id: int, address: str) -> dict[str, str]:
    """A pseudonymous identifier for an account: its CAIP-10 URI (``eip155:<chain>:<address>``)."""
    return {"system": ADDRESS_SYSTEM, "value": f"urn:eip155:{chain_id}:{address}"}


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
                "reference": {
                    "identifier": {"system": "urn:medchain:record", "value": "0x" + t.scope_value.hex()}
                },
            }
        ]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": grant.id.hex()[:64],
        "identifier": [{"system": "urn:medchain:consent", "value": "0x" + grant.id.hex()}],
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


def audit_event_resource(
    *,
    chain_id: int,
    observer: str,
    patient: str,
    accessor: str,
    purpose: Purpose,
    recorded_at: int,
    entity_ref: str,
    break_glass: bool,
    action: str = "R",
    outcome_success: bool = True,
) -> dict[str, Any]:
    """An access (or break-glass) event as a validated FHIR R4 AuditEvent."""
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "action": action,
        "recorded": _instant(recorded_at),
        "outcome": "0" if outcome_success else "8",
        "purposeOfEvent": [{"coding": [_purpose_coding(purpose)]}],
        "agent": [
            {
                "who": {"identifier": chain_identifier(chain_id, accessor)},
                "requestor": True,
                "purposeOfUse": [{"coding": [_purpose_coding(purpose)]}],
            }
        ],
        "source": {
            "observer": {"identifier": chain_identifier(chain_id, observer)},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
        "entity": [
            {
                "what": {"identifier": chain_identifier(chain_id, patient)},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
            },
            {"what": {"identifier": {"system": "urn:medchain:access", "value": entity_ref}}},
        ],
    }
    if break_glass:
        resource["subtype"] = [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "BTG",
                "display": "break the glass",
            }
        ]
    return _validated(AuditEvent, resource)


def _validated(model: Any, resource: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = model.model_validate(resource)
    except ValidationError as exc:
        raise FhirExportError(f"{resource['resourceType']} export is not valid FHIR: {exc}") from exc
    result: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True)
    return result


def break_glass_audit_event(session: BreakGlassSession, chain_id: int, observer: str) -> dict[str, Any]:
    """A break-glass session (from ``ConsentClient.session``) as a FHIR AuditEvent flagged BTG."""
    return audit_event_resource(
        chain_id=chain_id,
        observer=observer,
        patient=session.patient,
        accessor=session.institution,
        purpose=Purpose.ETREAT,
        recorded_at=session.opened_at,
        entity_ref=f"break-glass:{session.id}",
        break_glass=True,
        action="E",
    )


def access_audit_events(events: list[AccessEvent], chain_id: int, observer: str) -> list[dict[str, Any]]:
    """Audited accesses (``EHRClient.access_history``) as validated FHIR AuditEvents; break-glass
    reads are flagged BTG. ``observer`` is the EHRIndex address that recorded them."""
    return [
        audit_event_resource(
            chain_id=chain_id,
            observer=observer,
            patient=e.patient,
            accessor=e.accessor,
            purpose=e.purpose,
            recorded_at=e.timestamp,
            entity_ref="0x" + e.record_id.hex(),
            break_glass=e.break_glass,
        )
        for e in events
    ]


def claim_resources(
    claim: ClaimView,
    insurer: str,
    chain_id: int,
    billed: int,
    service: CoveredService,
    evidence: list[AnchoredRecord],
    currency: str = "USD",
    decimals: int = 6,
) -> dict[str, Any]:
    """A claim as a validated FHIR R4 Claim and ClaimResponse (R4B package); amounts in currency units."""
    created = datetime.fromtimestamp(claim.submitted_at, tz=UTC).isoformat().replace("+00:00", "Z")

    def money(units: int) -> dict[str, Any]:
        return {"value": units / 10**decimals, "currency": currency}

    ident = {"system": "urn:medchain:claim", "value": "0x" + claim.id.hex()}
    fhir_claim = {
        "resourceType": "Claim",
        "identifier": [ident],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
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
                "coverage": {"identifier": {"system": "urn:medchain:plan", "value": str(claim.plan_id)}},
            }
        ],
        "supportingInfo": [
            {
                "sequence": i + 1,
                "category": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                            "code": "info",
                        }
                    ]
                },
                "valueReference": {
                    "identifier": {"system": "urn:medchain:record", "value": "0x" + r.id.hex()}
                },
            }
            for i, r in enumerate(evidence)
        ],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "urn:medchain:billing-code", "code": service.code}]
                    + (
                        [{"system": "https://www.gs1.org/gtin", "code": f"{service.gtin:014d}"}]
                        if service.gtin
                        else []
                    )
                },
                "net": money(billed),
            }
        ],
        "total": money(billed),
    }
    outcome = {ClaimStatus.PAID: "complete", ClaimStatus.DENIED: "error"}.get(claim.status, "queued")
    response = {
        "resourceType": "ClaimResponse",
        "identifier": [ident],
        "status": "active",
        "type": fhir_claim["type"],
        "use": "claim",
        "patient": fhir_claim["patient"],
        "created": created,
        "insurer": fhir_claim["insurer"],
        "outcome": outcome,
        "disposition": claim.status.name.lower(),
        "total": [
            {
                "category": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "benefit"}
                    ]
                },
                "amount": money(claim.amount),
            },
            {
                "category": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "copay"}
                    ]
                },
                "amount": money(claim.patient_share),
            },
        ],
    }
    try:
        return {
            "claim": Claim.model_validate(fhir_claim).model_dump(mode="json", exclude_none=True),
            "claimResponse": ClaimResponse.model_validate(response).model_dump(
                mode="json", exclude_none=True
            ),
        }
    except Exception as exc:
        raise FhirExportError(f"FHIR Claim export is not valid: {exc}") from exc
