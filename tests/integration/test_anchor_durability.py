"""No lost keys, no silent loss: keys are durable before the anchor is sent, retries finish the
job instead of reverting, and what the chain can tell an outsider is only salted commitments."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import EHRClient, KeyVault
from medchain.errors import ContractRevert, TransactionFailed
from medchain.store import LocalFolderStore, cid_text
from medchain.types import Actions, Purpose, RecordStatus
from medchain.vault import VaultError

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}]},
    "valueQuantity": {"value": 9.1, "unit": "%"},
}


@pytest.fixture
def env(suite, tmp_path, patient, hospital, laboratory, private_key):
    for custodian in (hospital, laboratory):
        suite.consent.grant(
            patient.address,
            GrantTerms.for_all(
                patient.address, custodian.address, Actions.READ | Actions.APPEND, Purpose.TREAT
            ),
        )
    store = LocalFolderStore(tmp_path / "store")
    return {
        "ehr": suite.ehr(store),
        "store": store,
        "vault": KeyVault(tmp_path / "vault.sqlite"),
        "readers": (
            crypto.ReaderKey.from_private_key(private_key(hospital)),
            crypto.ReaderKey.from_private_key(private_key(patient)),
        ),
    }


class Flaky:
    """Wraps Chain.transact: sends for real, then reports a receipt time-out (the tx still mines)."""

    def __init__(self, chain, mode: str) -> None:
        self.chain = chain
        self.real = chain.transact
        self.mode = mode
        self.sent = 0

    def __call__(self, fn, sender, value=0):
        if self.mode == "down":  # the node is unreachable: nothing is sent
            raise TransactionFailed("the node could not be reached: connection refused")
        receipt = self.real(fn, sender, value)
        self.sent += 1
        if self.mode == "timeout":
            raise TransactionFailed("transaction not mined within 120 s")
        return receipt


def anchored_events(ehr: EHRClient, patient) -> int:
    return len(ehr.records_of(patient.address))


def test_receipt_timeout_after_mining_loses_no_key_and_a_retry_succeeds(env, patient, hospital, monkeypatch):
    ehr, vault = env["ehr"], env["vault"]
    flaky = Flaky(ehr.chain, "timeout")
    monkeypatch.setattr(ehr.chain, "transact", flaky)
    with pytest.raises(TransactionFailed, match="run again"):
        ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    assert flaky.sent == 1
    [on_chain] = ehr.records_of(patient.address)
    # The key is already durable: the custodian and the patient can open the record.
    assert len(vault) == 2
    vault.get(on_chain.id, hospital.address)
    monkeypatch.setattr(ehr.chain, "transact", flaky.real)
    retried = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    assert retried == on_chain  # found, not anchored again
    assert anchored_events(ehr, patient) == 1


def test_retry_after_the_node_was_down_sends_the_staged_record(env, patient, hospital, monkeypatch):
    ehr, vault = env["ehr"], env["vault"]
    monkeypatch.setattr(ehr.chain, "transact", Flaky(ehr.chain, "down"))
    with pytest.raises(TransactionFailed):
        ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    staged = vault.pending(vault_request_key(env, patient, hospital))
    assert staged is not None
    assert ehr.status(staged.record_id) == RecordStatus.NONE
    monkeypatch.undo()
    record = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    assert record.id == staged.record_id  # the staged header (salt, key, CID) was reused
    assert vault.pending(staged.request_key) is None  # confirmed


def test_retry_racing_its_first_transaction_treats_record_exists_as_success(
    env, patient, hospital, monkeypatch
):
    ehr, vault = env["ehr"], env["vault"]
    monkeypatch.setattr(ehr.chain, "transact", Flaky(ehr.chain, "timeout"))
    with pytest.raises(TransactionFailed):
        ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    monkeypatch.undo()
    # The status read happens while the first transaction still looks pending; it then mines.
    monkeypatch.setattr(ehr, "status", lambda _record_id: RecordStatus.NONE)
    record = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    assert anchored_events(ehr, patient) == 1
    assert ehr.record(record.id) == record


def test_other_reverts_still_fail_loudly(env, patient, hospital2, private_key):
    own_key = (crypto.ReaderKey.from_private_key(private_key(hospital2)),)
    with pytest.raises(ContractRevert, match="EHRNoTreatmentRelationship"):
        env["ehr"].anchor_resource(hospital2.address, OBSERVATION, patient.address, env["vault"], own_key)


def test_identical_resource_anchored_again_after_success_is_a_new_record(env, patient, hospital):
    ehr, vault = env["ehr"], env["vault"]
    first = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    second = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    assert first.id != second.id
    assert first.header.fingerprint != second.header.fingerprint  # fresh salt each time
    assert anchored_events(ehr, patient) == 2


def test_amendment_retry_after_timeout_succeeds(env, patient, hospital, monkeypatch):
    ehr, vault = env["ehr"], env["vault"]
    v1 = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    amended = {**OBSERVATION, "status": "amended"}
    monkeypatch.setattr(ehr.chain, "transact", Flaky(ehr.chain, "timeout"))
    with pytest.raises(TransactionFailed):
        ehr.anchor_resource(hospital.address, amended, patient.address, vault, env["readers"], previous=v1)
    monkeypatch.undo()
    v2 = ehr.anchor_resource(hospital.address, amended, patient.address, vault, env["readers"], previous=v1)
    assert v2.header.previous == v1.id
    assert ehr.status(v1.id) == RecordStatus.SUPERSEDED


def test_batch_retry_after_timeout_finishes_without_a_second_batch(
    suite, env, patient, laboratory, accounts, private_key, monkeypatch
):
    ehr, vault = env["ehr"], env["vault"]
    lab_key = crypto.ReaderKey.from_private_key(private_key(laboratory))
    items = [(patient.address, OBSERVATION), (patient.address, {**OBSERVATION, "id": "b"})]
    monkeypatch.setattr(ehr.chain, "transact", Flaky(ehr.chain, "timeout"))
    with pytest.raises(TransactionFailed):
        ehr.anchor_batch(laboratory.address, items, vault, lab_key)
    monkeypatch.undo()
    batch_id, records = ehr.anchor_batch(laboratory.address, items, vault, lab_key)
    assert batch_id == 1
    assert len(ehr.contract.events.BatchAnchored().get_logs(from_block=0)) == 1
    assert all(ehr.in_batch(r) for r in records)


def test_full_vault_disk_sends_nothing_to_the_chain(env, patient, hospital):
    ehr, vault = env["ehr"], env["vault"]
    pages = vault._db.execute("PRAGMA page_count").fetchone()[0]
    vault._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    readers = env["readers"][:1] + tuple(
        crypto.ReaderKey.from_private_key(bytes([i + 1]) * 32) for i in range(40)
    )
    with pytest.raises(VaultError, match="disk is full"):
        ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, readers)
    assert anchored_events(ehr, patient) == 0


# ─── What an outsider reading the chain and the public store learns ────────────────────────


def test_anchored_fingerprint_is_a_salted_commitment(env, patient, hospital, private_key):
    """Guessing the value: the unsalted digest of every candidate never matches the anchor."""
    ehr, vault = env["ehr"], env["vault"]
    record = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, env["readers"])
    guesses = [
        crypto.fingerprint(
            crypto.canonical_json({**OBSERVATION, "valueQuantity": {"value": v / 10, "unit": "%"}})
        )
        for v in range(40, 200)
    ]
    assert crypto.fingerprint(crypto.canonical_json(OBSERVATION)) in guesses  # the true value is among them
    assert record.header.fingerprint not in guesses
    # A key holder opens the record, finds the salt, and checks the commitment.
    envelope = vault.get(record.id, patient.address)
    sealed = crypto.decrypt(
        crypto.unwrap_key(envelope, private_key(patient)), env["store"].get(record.cid), record.id
    )
    salt, canonical = crypto.open_plaintext(sealed)
    assert crypto.commitment(salt, canonical) == record.header.fingerprint
    assert json.loads(canonical) == OBSERVATION


def test_public_batch_index_names_no_patient_and_no_fingerprint(
    env, patient, laboratory, accounts, private_key
):
    ehr = env["ehr"]
    lab_key = crypto.ReaderKey.from_private_key(private_key(laboratory))
    items = [(patient.address, OBSERVATION), (patient.address, {**OBSERVATION, "id": "2"})]
    _batch_id, records = ehr.anchor_batch(laboratory.address, items, env["vault"], lab_key)
    [log] = ehr.contract.events.BatchAnchored().get_logs(from_block=0)
    index_bytes = env["store"].get(cid_text(bytes(log["args"]["cid"])))
    index = json.loads(index_bytes)
    assert index["leaves"] == ["0x" + r.id.hex() for r in records]  # what a verifier needs
    text = index_bytes.decode().lower()
    assert patient.address.lower()[2:] not in text
    for r in records:
        assert r.header.fingerprint.hex() not in text
        assert r.cid.lower() not in text
    assert "observation" not in text
    # The custodian can still rebuild its records from the sealed part.
    entries = json.loads(
        crypto.open_sealed(base64.b64decode(index["sealedEntries"]), private_key(laboratory))
    )
    assert [e["recordId"] for e in entries] == index["leaves"]
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(base64.b64decode(index["sealedEntries"]), private_key(patient))


def vault_request_key(env, patient, hospital):
    from medchain.ehr import request_key
    from medchain.types import ZERO32

    return request_key(patient.address, hospital.address, ZERO32, crypto.canonical_json(OBSERVATION))


def test_request_key_never_reaches_the_chain(env, patient, hospital):
    """The local retry key is an unsalted hash of the plaintext: it must stay in the vault."""
    from brownie import web3

    env["ehr"].anchor_resource(hospital.address, OBSERVATION, patient.address, env["vault"], env["readers"])
    key = vault_request_key(env, patient, hospital)
    logs = web3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
    blob = b"".join(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]) for log in logs)
    assert key not in blob
    assert hashlib.sha256(crypto.canonical_json(OBSERVATION)).digest() not in blob
