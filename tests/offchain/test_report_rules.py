"""The report's on-chain rules on hand-made event histories: a read without a valid basis is
found whatever the reason (the contract never lets one happen, so only fabricated logs can show
that the check is not vacuous), and an examination is a duplicate only when a recent result
elsewhere was shareable with the examining institution at that moment."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from medchain.chain import ChainLog
from medchain.report import (
    Durations,
    _Book,
    _examinations,
    _History,
    _Records,
    _retrieval,
    _unauthorised,
    measured_efficiency,
)
from medchain.types import NO_END, ZERO32, Actions, Kind, MemberStatus, Purpose, ScopeKind, category_code

PATIENT, GUARDIAN = "0x" + "aa" * 20, "0x" + "ab" * 20
HOSPITAL, CLINIC, OTHER = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
RECORD, SCAN = b"\x01" * 32, b"\x02" * 32
DAY = 86400
TREAT_ONLY = Purpose.mask(Purpose.TREAT)
QUARTER = 7_889_400  # 365.25 / 4 days


def log(event, block, ts, index=0, tx=None, **args):
    return ChainLog(
        event, MappingProxyType(args), block, index, ts, tx or f"0x{block:064x}", "0x" + "00" * 20
    )


def granted(
    grant_id,
    block,
    ts,
    grantee=HOSPITAL,
    actions=Actions.READ,
    purposes=TREAT_ONLY,
    scope=ScopeKind.ALL,
    value=ZERO32,
    not_after=NO_END,
    actor=PATIENT,
):
    terms = MappingProxyType(
        {
            "patient": PATIENT,
            "grantee": grantee,
            "scopeKind": int(scope),
            "scopeValue": value,
            "actions": int(actions),
            "purposes": purposes,
            "notBefore": 0,
            "notAfter": not_after,
        }
    )
    return log(
        "ConsentGranted",
        block,
        ts,
        grantId=grant_id,
        patient=PATIENT,
        grantee=grantee,
        actor=actor,
        terms=terms,
        viaSignature=False,
    )


def anchored(record_id, block, ts, custodian=CLINIC, category="Observation"):
    return log(
        "RecordAnchored",
        block,
        ts,
        recordId=record_id,
        patient=PATIENT,
        custodian=custodian,
        fingerprint=b"\x09" * 32,
        category=category_code(category),
        previous=ZERO32,
        cid=b"",
    )


def accessed(
    block, ts, authorization, reader=HOSPITAL, record_id=RECORD, purpose=Purpose.TREAT, glass=False, tx=None
):
    return log(
        "RecordAccessed",
        block,
        ts,
        tx=tx,
        recordId=record_id,
        accessor=reader,
        patient=PATIENT,
        purpose=int(purpose),
        authorization=authorization,
        breakGlass=glass,
    )


def without_basis(*logs, first=1):
    by_event = {}
    for entry in sorted(logs, key=lambda e: e.position):
        by_event.setdefault(entry.event, []).append(entry)
    history = _History(by_event, first, max(e.block for e in logs))
    book = _Book(history)
    found = _unauthorised(history, book, _Records(history, None), [], QUARTER)
    return found.without_basis, found


G = b"\x47" * 32


def test_valid_reads_have_a_basis():
    session = (1).to_bytes(32, "big")
    bare, found = without_basis(
        anchored(RECORD, 1, 100),
        granted(G, 2, 200),
        accessed(3, 300, G),  # under the patient's grant
        accessed(4, 400, ZERO32, reader=CLINIC),  # the custodian itself
        accessed(5, 500, ZERO32, reader=PATIENT),  # the patient itself
        log(
            "BreakGlassOpened",
            6,
            600,
            sessionId=1,
            patient=PATIENT,
            institution=OTHER,
            expiresAt=5000,
            justificationDigest=b"\x01" * 32,
        ),
        accessed(7, 700, session, reader=OTHER, purpose=Purpose.ETREAT, glass=True),
    )
    assert bare == ()
    assert (found.reads, found.break_glass_reads, found.incidents_per_quarter) == (4, 1, 0.0)


def test_read_under_a_revoked_grant_has_no_valid_basis():
    bare, found = without_basis(
        anchored(RECORD, 1, 100),
        granted(G, 2, 200),
        log("ConsentRevoked", 3, 300, grantId=G, patient=PATIENT, actor=PATIENT),
        accessed(4, 400, G, tx="0xbad"),
    )
    assert bare == ("0xbad",)
    assert found.incidents_per_quarter == pytest.approx(1.0)


def test_read_under_another_grantees_grant_has_no_valid_basis():
    bare, _ = without_basis(
        anchored(RECORD, 1, 100), granted(G, 2, 200, grantee=OTHER), accessed(3, 300, G, tx="0xbad")
    )
    assert bare == ("0xbad",)


def test_read_outside_the_grant_window_has_no_valid_basis():
    bare, _ = without_basis(
        anchored(RECORD, 1, 100), granted(G, 2, 200, not_after=250), accessed(3, 300, G, tx="0xbad")
    )
    assert bare == ("0xbad",)


def test_read_for_a_purpose_or_action_the_grant_does_not_cover_has_no_valid_basis():
    other = b"\x48" * 32
    bare, _ = without_basis(
        anchored(RECORD, 1, 100),
        granted(G, 2, 200, purposes=Purpose.mask(Purpose.HPAYMT)),
        granted(other, 3, 210, actions=Actions.APPEND),
        accessed(4, 300, G, tx="0xpurpose"),
        accessed(5, 310, other, tx="0xaction"),
    )
    assert bare == ("0xpurpose", "0xaction")


def test_category_grant_covers_only_its_category():
    obs = b"\x49" * 32
    bare, _ = without_basis(
        anchored(RECORD, 1, 100, category="Observation"),
        anchored(SCAN, 2, 110, category="DiagnosticReport"),
        granted(obs, 3, 200, scope=ScopeKind.CATEGORY, value=category_code("Observation")),
        accessed(4, 300, obs, record_id=RECORD),
        accessed(5, 310, obs, record_id=SCAN, tx="0xbad"),
    )
    assert bare == ("0xbad",)


def test_read_under_a_lapsed_guardian_grant_has_no_valid_basis():
    bare, _ = without_basis(
        anchored(RECORD, 1, 100),
        granted(G, 2, 200, actor=GUARDIAN),
        accessed(3, 300, G),
        log("GuardianRemoved", 4, 400, patient=PATIENT, guardian=GUARDIAN),
        accessed(5, 500, G, tx="0xbad"),
    )
    assert bare == ("0xbad",)


def test_read_by_a_suspended_institution_has_no_valid_basis():
    bare, _ = without_basis(
        log(
            "MemberAdmitted",
            1,
            50,
            account=HOSPITAL,
            kind=1,
            rating=80,
            licenceDigest=b"\x00" * 32,
            proposalId=0,
        ),
        anchored(RECORD, 2, 100),
        granted(G, 3, 200),
        log(
            "MemberStatusChanged",
            4,
            300,
            account=HOSPITAL,
            previous=1,
            current=int(MemberStatus.SUSPENDED),
            proposalId=1,
        ),
        accessed(5, 400, G, tx="0xbad"),
    )
    assert bare == ("0xbad",)


def test_break_glass_read_after_the_session_ended_or_was_replaced_has_no_valid_basis():
    one, two = (1).to_bytes(32, "big"), (2).to_bytes(32, "big")
    opened = {"patient": PATIENT, "institution": OTHER, "justificationDigest": b"\x01" * 32}
    bare, _ = without_basis(
        anchored(RECORD, 1, 100),
        log("BreakGlassOpened", 2, 200, sessionId=1, expiresAt=10_000, **opened),
        log("BreakGlassEnded", 3, 300, sessionId=1, disputedSessionId=1, expiresAt=299),
        accessed(4, 400, one, reader=OTHER, purpose=Purpose.ETREAT, glass=True, tx="0xended"),
        log("BreakGlassOpened", 5, 500, sessionId=2, expiresAt=10_000, **opened),
        log("BreakGlassOpened", 6, 600, sessionId=3, expiresAt=10_000, **opened),
        accessed(7, 700, two, reader=OTHER, purpose=Purpose.ETREAT, glass=True, tx="0xreplaced"),
        accessed(
            8, 800, (3).to_bytes(32, "big"), reader=OTHER, purpose=Purpose.TREAT, glass=True, tx="0xpurpose"
        ),
    )
    assert bare == ("0xended", "0xreplaced", "0xpurpose")


def test_reads_before_the_range_are_not_counted_but_grants_before_it_still_count():
    bare, found = without_basis(
        anchored(RECORD, 1, 100),
        granted(G, 2, 200),
        accessed(3, 300, b"\x99" * 32),
        accessed(5, 500, G),
        first=4,
    )
    assert (bare, found.reads) == ((), 1)


# ─── Duplicate examinations ─────────────────────────────────────────────────────────────────


def exams(*logs, first=1, window_days=60):
    by_event = {}
    for entry in sorted(logs, key=lambda e: e.position):
        by_event.setdefault(entry.event, []).append(entry)
    history = _History(by_event, first, max(e.block for e in logs))
    book = _Book(history)
    return _examinations(history, book, _Records(history, None), ("DiagnosticReport",), window_days)


def test_examination_repeating_a_shareable_recent_result_is_a_duplicate():
    found = exams(
        anchored(SCAN, 1, 100, custodian=CLINIC, category="DiagnosticReport"),
        granted(G, 2, 200, grantee=HOSPITAL, actions=Actions.READ | Actions.APPEND),
        anchored(b"\x03" * 32, 3, 300, custodian=HOSPITAL, category="DiagnosticReport"),
    )
    assert (found.performed, found.duplicates, found.repeats_not_shareable, found.rate) == (2, 1, 0, 0.5)


def test_examination_after_the_consent_was_revoked_is_a_repeat_not_a_duplicate():
    found = exams(
        anchored(SCAN, 1, 100, custodian=CLINIC, category="DiagnosticReport"),
        granted(G, 2, 200, grantee=HOSPITAL),
        log("ConsentRevoked", 3, 250, grantId=G, patient=PATIENT, actor=PATIENT),
        anchored(b"\x03" * 32, 4, 300, custodian=HOSPITAL, category="DiagnosticReport"),
    )
    assert (found.duplicates, found.repeats_not_shareable) == (0, 1)


def test_examination_after_the_recency_window_repeats_nothing():
    found = exams(
        anchored(SCAN, 1, 100, custodian=CLINIC, category="DiagnosticReport"),
        granted(G, 2, 200, grantee=HOSPITAL),
        anchored(b"\x03" * 32, 3, 100 + 61 * DAY, custodian=HOSPITAL, category="DiagnosticReport"),
    )
    assert (found.duplicates, found.repeats_not_shareable) == (0, 0)


def test_reading_a_recent_result_instead_of_examining_is_an_avoided_reexamination():
    second = b"\x4b" * 32
    found = exams(
        admitted(HOSPITAL, 1, Kind.HOSPITAL),  # only a care provider's visit avoids an examination
        anchored(SCAN, 1, 100, custodian=CLINIC, category="DiagnosticReport"),
        granted(G, 2, 200, grantee=HOSPITAL),
        accessed(3, 300, G, record_id=SCAN),  # visit 1: read, no examination: avoided
        granted(G, 4, 400, grantee=HOSPITAL),  # visit 2 (the same grant given again)
        accessed(5, 500, G, record_id=SCAN),
        anchored(second, 6, 600, custodian=HOSPITAL, category="DiagnosticReport"),  # examined anyway
    )
    assert (found.avoided, found.duplicates) == (1, 1)


def test_retrieval_time_runs_from_the_request_to_the_first_access_under_it():
    history = _History(
        {
            "MemberAdmitted": [admitted(HOSPITAL, 1, Kind.HOSPITAL)],  # a care provider's request
            "ConsentGranted": [
                granted(G, 2, 1000),
                granted(b"\x50" * 32, 3, 1100, actions=Actions.APPEND),
            ],
            "RecordAccessed": [
                accessed(4, 1600, b"\x51" * 32),
                accessed(5, 1900, G),
                accessed(6, 2500, G),
            ],
        },
        1,
        6,
    )
    found = _retrieval(history, _Book(history))
    assert (found.requests, found.fulfilled, found.times) == (1, 1, Durations.of([900]))


def test_measured_eta_maps_the_chain_interval_onto_table1s_45_minutes():
    result, steps, note = measured_efficiency(900.0)
    assert result is not None
    assert result.eta == pytest.approx(1 - 900 / 2700)
    assert steps[0].before == 2700
    assert "feedback" in note
    slower, _steps, why = measured_efficiency(3600.0)
    assert slower is None
    assert "got slower" in why


def test_docs_report_lists_every_definition():
    from pathlib import Path

    from medchain.report import DEFINITIONS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text()
    for term, text in DEFINITIONS:
        assert f"- **{term}.** {text}" in doc, f"docs/report.md lacks the definition of {term}"


# ─── Who the visit figures count ────────────────────────────────────────────────────────────


def admitted(account, block, kind):
    return log("MemberAdmitted", block, block * 10, account=account, kind=int(kind), rating=80)


def test_reads_by_an_account_that_is_no_care_provider_are_no_retrieval_and_avoid_no_examination():
    # Any address can be a "patient" and grant any address READ for TREAT, and re-granting the same
    # grant id makes a new request: a patient with one record and a friend's address (no member of
    # anything) would otherwise add a zero-second retrieval and an avoided re-examination per two
    # transactions, driving the published median to zero. Only a consortium care provider's visit
    # is a cross-institution retrieval or a re-examination avoided.
    friend, lab = OTHER, "0x" + "44" * 20
    logs = [
        admitted(CLINIC, 1, Kind.HOSPITAL),
        admitted(lab, 1, Kind.LABORATORY),
        anchored(SCAN, 2, 100, custodian=CLINIC, category="DiagnosticReport"),
    ]
    for i, reader in enumerate((friend, friend, friend, lab)):
        grant = bytes([0x60 + (reader == lab)]) * 32
        logs += [granted(grant, 3 + 2 * i, 200 + 20 * i, grantee=reader)]
        logs += [accessed(4 + 2 * i, 200 + 20 * i, grant, reader=reader, record_id=SCAN)]
    history = _history(*logs)
    assert _retrieval(history, _Book(history)).requests == 0
    assert exams(*logs).avoided == 0


def test_a_suspended_care_providers_requests_are_not_counted():
    logs = [
        admitted(HOSPITAL, 1, Kind.HOSPITAL),
        log("MemberStatusChanged", 2, 20, account=HOSPITAL, previous=1, current=int(MemberStatus.SUSPENDED)),
        anchored(SCAN, 3, 100, custodian=CLINIC, category="DiagnosticReport"),
        granted(G, 4, 200),
        accessed(5, 210, G, record_id=SCAN),
    ]
    history = _history(*logs)
    assert _retrieval(history, _Book(history)).requests == 0
    assert exams(*logs).avoided == 0


def _history(*logs, first=1):
    by_event = {}
    for entry in sorted(logs, key=lambda e: e.position):
        by_event.setdefault(entry.event, []).append(entry)
    return _History(by_event, first, max(e.block for e in logs))
