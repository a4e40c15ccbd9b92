"""End to end: two hospitals, a patient and an outsider; encrypted records, consent, audit, tampering;
and proof that no plaintext reaches chain storage or events."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from brownie import network, web3

from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import AccessNotPermittedError, IntegrityError, KeyVault, Release
from medchain.errors import ContractRevert
from medchain.fhir import access_audit_events, denied_audit_events
from medchain.store import CachedStore, LocalFolderStore
from medchain.types import Actions, Purpose

PATIENT_NAME = "Zhang Wei-Secret"
DIAGNOSIS = "Type 2 diabetes mellitus with ketoacidosis"


def condition(text=DIAGNOSIS):
    return {
        "resourceType": "Condition",
        "subject": {"display": PATIENT_NAME},
        "code": {"text": text, "coding": [{"system": "http://snomed.info/sct", "code": "420422005"}]},
        "note": [{"text": "Patient reports polyuria for 3 weeks"}],
    }


OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "subject": {"display": PATIENT_NAME},
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "valueQuantity": {"value": 17.9, "unit": "mmol/L"},
}


@pytest.fixture
def world(suite, tmp_path, hospital, hospital2, private_key, accounts, run_gateway, local):
    patient_key = accounts[8]  # the `patient` fixture's account, with its key for decryption
    store = CachedStore(LocalFolderStore(tmp_path / "store"), capacity=8)
    ehr = suite.ehr(store)
    vault = KeyVault(tmp_path / "vault.sqlite")
    _service, client = run_gateway(hospital, store, vault)

    class Gateway:
        """The hospital's gateway over HTTP, as a reader (by its own key) sees it."""

        @staticmethod
        def release(record, reader) -> Release:
            return client.fetch(ehr, record.id, local(reader))

    gateway = Gateway()
    keys = {
        a.address: crypto.ReaderKey.from_private_key(private_key(a))
        for a in (hospital, hospital2, patient_key)
    }
    suite.consent.grant(
        patient_key.address,
        GrantTerms.for_all(
            patient_key.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT
        ),
    )
    return {"ehr": ehr, "vault": vault, "gateway": gateway, "keys": keys, "store": store}


def anchor(world, patient, hospital, resource):
    keys = world["keys"]
    return world["ehr"].anchor_resource(
        hospital.address,
        resource,
        patient.address,
        world["vault"],
        (keys[hospital.address], keys[patient.address]),
    )


def test_two_hospitals_patient_and_outsider(
    suite, world, patient, hospital, hospital2, outsider, private_key
):
    ehr, gateway = world["ehr"], world["gateway"]
    record = anchor(world, patient, hospital, condition())
    assert ehr.records_of(patient.address)[0].id == record.id

    # The patient reads its own record.
    resource = ehr.open(gateway.release(record, patient), private_key(patient))
    assert resource["code"]["text"] == DIAGNOSIS

    # Hospital 2 without consent: refused on chain, and the gateway releases nothing.
    with pytest.raises(ContractRevert, match="EHRAccessDenied"):
        ehr.access(hospital2.address, record, Purpose.TREAT)
    with pytest.raises(AccessNotPermittedError):
        gateway.release(record, hospital2)

    # The patient grants; hospital 2 reads, decrypts and verifies.
    gid = suite.consent.grant(
        patient.address,
        GrantTerms.for_category(patient.address, hospital2.address, "Condition", Actions.READ, Purpose.TREAT),
    )
    ehr.access(hospital2.address, record, Purpose.TREAT)
    resource = ehr.open(gateway.release(record, hospital2), private_key(hospital2))
    assert resource == condition()

    # The outsider is refused; it has no key even if it got the ciphertext.
    with pytest.raises(ContractRevert, match="EHRAccessDenied"):
        ehr.access(outsider.address, record, Purpose.TREAT)

    # Revocation: the next read is denied on chain.
    suite.consent.revoke(patient.address, gid)
    with pytest.raises(ContractRevert, match="EHRAccessDenied"):
        ehr.access(hospital2.address, record, Purpose.TREAT)

    # Break-glass: an emergency read is allowed and flagged.
    suite.consent.open_break_glass(hospital2.address, patient.address, hashlib.sha256(b"ER").digest())
    ehr.access(hospital2.address, record, Purpose.ETREAT)
    history = ehr.access_history(patient=patient.address)
    assert [h.accessor for h in history] == [hospital2.address, hospital2.address]
    assert [h.break_glass for h in history] == [False, True]
    assert history[0].authorization == gid

    # Access history exports as FHIR AuditEvents.
    events = access_audit_events(ehr.access_history(patient=patient.address), ehr.chain.chain_id, ehr.address)
    assert all(e["resourceType"] == "AuditEvent" for e in events)
    purposes = [[p["coding"][0]["code"] for p in e["purposeOfEvent"]] for e in events]
    assert purposes == [["TREAT"], ["ETREAT", "BTG"]]  # the break-glass read carries BTG


def test_amendment_reads_new_version(world, patient, hospital, private_key):
    ehr, gateway, keys = world["ehr"], world["gateway"], world["keys"]
    v1 = anchor(world, patient, hospital, condition())
    v2 = world["ehr"].anchor_resource(
        hospital.address,
        condition("Type 2 diabetes, controlled"),
        patient.address,
        world["vault"],
        (keys[hospital.address], keys[patient.address]),
        previous=v1,
    )
    assert v2.header.previous == v1.id
    assert ehr.status(v1.id) == 2
    assert ehr.open(gateway.release(v2, patient), private_key(patient))["code"]["text"].endswith("controlled")


def test_tampered_ciphertext_is_detected(world, patient, hospital, private_key):
    record = anchor(world, patient, hospital, OBSERVATION)
    release = world["gateway"].release(record, patient)
    tampered = Release(
        release.record, release.ciphertext[:-1] + bytes([release.ciphertext[-1] ^ 1]), release.envelope
    )
    with pytest.raises(crypto.CryptoError):
        world["ehr"].open(tampered, private_key(patient))


def test_wrong_key_is_detected(world, patient, hospital, hospital2, private_key):
    record = anchor(world, patient, hospital, OBSERVATION)
    release = world["gateway"].release(record, patient)
    with pytest.raises(crypto.CryptoError):
        world["ehr"].open(release, private_key(hospital2))


def test_swapped_cid_is_detected(world, patient, hospital, private_key):
    a = anchor(world, patient, hospital, OBSERVATION)
    b = anchor(world, patient, hospital, condition())
    # A gateway (or a store) serving b's ciphertext for a: the AES-GCM tag binds the record id.
    swapped = Release(a, world["store"].get(b.cid), world["gateway"].release(a, patient).envelope)
    with pytest.raises(crypto.CryptoError):
        world["ehr"].open(swapped, private_key(patient))


def test_fingerprint_mismatch_is_detected(world, patient, hospital, private_key):
    """Even a ciphertext that decrypts must hash to the anchored fingerprint."""
    record = anchor(world, patient, hospital, OBSERVATION)
    key = crypto.new_data_key()
    salt = crypto.new_salt()  # the forger's own salt: the commitment on chain does not match it
    sealed = crypto.seal_plaintext(salt, crypto.canonical_json({**OBSERVATION, "status": "amended"}))
    forged = crypto.encrypt(key, sealed, record.id)
    envelope = crypto.wrap_key(key, world["keys"][patient.address])
    with pytest.raises(IntegrityError):
        world["ehr"].open(Release(record, forged, envelope), private_key(patient))


def test_rejected_anchor_is_not_reported(world, patient, hospital2):
    """hospital2 has no treatment relationship: the chain refuses and the client reports no record."""
    keys = world["keys"]
    with pytest.raises(ContractRevert, match="EHRNoTreatmentRelationship"):
        world["ehr"].anchor_resource(
            hospital2.address, OBSERVATION, patient.address, world["vault"], (keys[hospital2.address],)
        )
    assert world["ehr"].records_of(patient.address) == []


def test_batch_from_laboratory_is_read_through_proof(
    suite, world, patient, laboratory, accounts, private_key, run_gateway, local
):
    patients = [patient, accounts[15]]
    for p in patients:
        suite.consent.grant(
            p.address,
            GrantTerms.for_category(
                p.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
            ),
        )
    lab_key = crypto.ReaderKey.from_private_key(private_key(laboratory))
    vault = KeyVault()
    batch_id, records = world["ehr"].anchor_batch(
        laboratory.address,
        [(p.address, OBSERVATION) for p in patients],
        vault,
        lab_key,
        {patient.address: world["keys"][patient.address]},
    )
    world["ehr"].access(patient.address, records[0], Purpose.TREAT)
    _service, lab_gateway = run_gateway(laboratory, world["store"], vault)
    resource = lab_gateway.read(world["ehr"], records[0].id, local(patient))
    assert resource["valueQuantity"]["value"] == 17.9
    assert batch_id == 1


def test_cache_serves_hot_records(world, patient, hospital):
    record = anchor(world, patient, hospital, OBSERVATION)
    store = world["store"]
    hits = store.hits
    world["gateway"].release(record, patient)
    assert store.hits == hits + 1  # the ciphertext was cached when stored


@pytest.mark.skipif("network.show_active() != 'development'", reason="anvil_dumpState is Anvil's")
def test_no_plaintext_in_chain_state_or_events(suite, world, patient, hospital, hospital2):
    """Scan every storage slot and every event of the chain for the records' plaintext."""
    anchor(world, patient, hospital, condition())
    anchor(world, patient, hospital, OBSERVATION)
    suite.consent.grant(
        patient.address, GrantTerms.for_all(patient.address, hospital2.address, Actions.READ, Purpose.TREAT)
    )
    needles = [PATIENT_NAME, DIAGNOSIS, "polyuria", "17.9", "Glucose"]
    state = bytes.fromhex(web3.provider.make_request("anvil_dumpState", [])["result"][2:])
    dump = gzip.decompress(state)
    logs = web3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
    log_bytes = b"".join(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]) for log in logs)
    assert len(logs) > 5  # the scan saw real data
    assert len(dump) > 1000
    for needle in needles:
        raw = needle.encode()
        for haystack, where in ((dump, "state dump"), (log_bytes, "event logs")):
            assert raw not in haystack, f"{needle!r} found in {where}"
            assert raw.hex().encode() not in haystack.lower(), f"{needle!r} (hex) found in {where}"
    assert json.loads(dump)  # the dump is the JSON state we think it is
    assert network.show_active() == "development"


def test_refused_attempt_is_in_the_audit_trail_and_releases_nothing(
    suite, world, patient, hospital, hospital2, outsider
):
    """A read without consent leaves an AccessDenied event (exported as a failed AuditEvent), and
    the gateway still releases nothing: it trusts RecordAccessed events only."""
    ehr, gateway = world["ehr"], world["gateway"]
    record = anchor(world, patient, hospital, condition())
    assert ehr.attempt(hospital2.address, record, Purpose.TREAT) is False
    assert ehr.attempt(outsider.address, record, Purpose.HRESCH) is False
    with pytest.raises(AccessNotPermittedError):
        gateway.release(record, hospital2)
    denied = ehr.denied_attempts(patient=patient.address)
    assert [(d.accessor, d.purpose, d.record_id) for d in denied] == [
        (hospital2.address, Purpose.TREAT, record.id),
        (outsider.address, Purpose.HRESCH, record.id),
    ]
    assert ehr.access_history(patient=patient.address) == []  # nothing counts as a read
    events = denied_audit_events(denied, ehr.chain.chain_id, ehr.address)
    assert [e["outcome"] for e in events] == ["4", "4"]
    assert all(e["entity"][1]["what"]["identifier"]["value"] == "0x" + record.id.hex() for e in events)
    # With consent, an attempt is the audited read, and the gateway releases.
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital2.address, Actions.READ, Purpose.TREAT),
    )
    assert ehr.attempt(hospital2.address, record, Purpose.TREAT) is True
    assert gateway.release(record, hospital2).record.id == record.id
    assert len(ehr.denied_attempts(record_id=record.id)) == 2
