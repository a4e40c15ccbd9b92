"""An outsider's attacks across the chain/off-chain line: the gateway's release rules (sessions,
suspended readers, versions, batches, look-alike events, signatures), its resources (challenge
table, slow bodies, consent checks per release), the anchoring flow (readers and retries) and the
reader's client facing a lying gateway. Attacks that fail document the rule that stops them."""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import replace

import httpx
import pytest
from brownie import chain, web3
from eth_keys.datatypes import Signature

from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import IntegrityError, KeyVault
from medchain.errors import ContractRevert, MedChainError, TransactionFailed
from medchain.gateway import GatewayClient
from medchain.gateway.protocol import sign
from medchain.gateway.service import GatewayError, GatewayForbidden, GatewayNotFound
from medchain.store import LocalFolderStore, cid_text
from medchain.types import Actions, GovernanceAction, ProposalStatus, Purpose
from tests.helpers import gateway_challenge, gateway_post, gateway_release

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "valueQuantity": {"value": 11.4, "unit": "mmol/L"},
}
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def world(suite, tmp_path, patient, hospital, private_key, run_gateway):
    """A record of the patient at the hospital, its key staged in the hospital's vault."""
    store = LocalFolderStore(tmp_path / "store")
    vault = KeyVault(tmp_path / "vault.sqlite")
    ehr = suite.ehr(store)
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    keys = {a.address: crypto.ReaderKey.from_private_key(private_key(a)) for a in (hospital, patient)}
    record = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, tuple(keys.values()))
    return {
        "ehr": ehr,
        "store": store,
        "vault": vault,
        "keys": keys,
        "record": record,
        "gateway": lambda **settings: run_gateway(hospital, store, vault, **settings),
    }


def grant_read(suite, patient, grantee, purposes=Purpose.TREAT):
    return suite.consent.grant(
        patient.address,
        GrantTerms.for_category(patient.address, grantee.address, "Observation", Actions.READ, purposes),
    )


post, challenge_for, release = gateway_post, gateway_challenge, gateway_release


# ─── Resources: the challenge table, slow bodies, consent checks per release ───────────────


def test_flood_of_open_challenges_does_not_lock_readers_out(world, patient, local):
    """Challenges cost nothing to ask for: a flood (from many addresses) that filled the table
    answered every later reader 429 until they expired. Full, the table drops its oldest."""
    _service, client = world["gateway"](max_open_challenges=5)
    for _ in range(20):
        assert post(client, "/v1/challenges", {"record_id": "0x" + "42" * 32}).status_code == 200
    assert client.read(world["ehr"], world["record"].id, local(patient)) == OBSERVATION


def test_slow_body_is_cut_off_with_408(world):
    """A client that sends headers and then trickles (or never sends) its body holds a connection
    and never reaches the rate limits, which count requests that arrived."""
    _service, client = world["gateway"](body_timeout=1.0)
    host, port = client.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/challenges HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert time.monotonic() - started < 5


def test_many_access_events_cost_one_consent_check_per_purpose(
    suite, world, patient, hospital2, local, monkeypatch
):
    """Each audited access was one consent check at the gateway: a reader with hundreds of access
    events (cheap on a gas-free consortium chain) turned each refused release into hundreds of
    node calls. The answer only depends on the purpose."""
    ehr, record = world["ehr"], world["record"]
    _service, client = world["gateway"]()
    grant = grant_read(suite, patient, hospital2)
    for _ in range(8):
        ehr.access(hospital2.address, record, Purpose.TREAT)
    suite.consent.revoke(patient.address, grant)
    calls = []
    real = suite.consent.check

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(suite.consent, "check", counting)
    with pytest.raises(GatewayForbidden, match="no longer holds"):
        client.fetch(ehr, record.id, local(hospital2))
    assert len(calls) == 1


# ─── Break-glass, suspension, versions: the consent must still hold, for this very access ──


def test_break_glass_read_of_an_earlier_session_does_not_release_under_a_later_one(
    suite, consent, world, patient, hospital2, local
):
    """Session 1 audited a read; after it ended, session 2 was opened (its own justification, its
    own review) but nothing was read under it. The gateway released on session 1's event under
    session 2, so session 2's reviewer saw no read while records were released."""
    ehr, record = world["ehr"], world["record"]
    _service, client = world["gateway"](access_window=10**9)
    suite.consent.open_break_glass(hospital2.address, patient.address, hashlib.sha256(b"ER 1").digest())
    ehr.access(hospital2.address, record, Purpose.ETREAT)
    assert client.read(ehr, record.id, local(hospital2)) == OBSERVATION
    chain.sleep(int(consent.breakGlassDuration()) + 10)
    chain.mine()
    suite.consent.open_break_glass(hospital2.address, patient.address, hashlib.sha256(b"ER 2").digest())
    with pytest.raises(GatewayForbidden, match="no longer holds"):
        client.fetch(ehr, record.id, local(hospital2))
    ehr.access(hospital2.address, record, Purpose.ETREAT)  # audited under session 2
    assert client.read(ehr, record.id, local(hospital2)) == OBSERVATION


def test_suspended_institution_cannot_read_with_a_recent_access_event(
    suite, world, patient, hospital, hospital2, laboratory, insurer, manufacturer, regulator, local
):
    ehr, record = world["ehr"], world["record"]
    _service, client = world["gateway"]()
    grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, record, Purpose.TREAT)
    assert client.read(ehr, record.id, local(hospital2)) == OBSERVATION
    proposal = suite.registry.propose_change(regulator.address, hospital2.address, GovernanceAction.SUSPEND)
    for voter in (hospital, insurer, laboratory, manufacturer):
        if suite.registry.proposal(proposal).status != ProposalStatus.OPEN:
            break
        suite.registry.vote(voter.address, proposal, True)
    assert suite.registry.proposal(proposal).status == ProposalStatus.EXECUTED
    with pytest.raises(GatewayForbidden, match="no longer holds"):
        client.fetch(ehr, record.id, local(hospital2))


def test_access_to_an_old_version_does_not_open_the_amended_one(
    suite, world, patient, hospital, hospital2, local
):
    """The superseded version stays readable as itself (the history is kept), but its access
    event says nothing about the new version."""
    ehr, v1 = world["ehr"], world["record"]
    _service, client = world["gateway"]()
    v2 = ehr.anchor_resource(
        hospital.address,
        {**OBSERVATION, "status": "amended"},
        patient.address,
        world["vault"],
        tuple(world["keys"].values()),
        previous=v1,
    )
    suite.consent.grant(
        patient.address,
        GrantTerms.for_record(patient.address, hospital2.address, v1.id, Actions.READ, Purpose.TREAT),
    )
    ehr.access(hospital2.address, v1, Purpose.TREAT)
    assert client.read(ehr, v1.id, local(hospital2)) == OBSERVATION
    with pytest.raises(GatewayForbidden, match="no audited access"):
        client.fetch(ehr, v2.id, local(hospital2))


def test_access_to_one_batched_record_does_not_open_its_neighbour(
    suite, world, patient, laboratory, hospital2, accounts, private_key, run_gateway, local
):
    """Both records sit under one root with proofs that share nodes; the access event names one."""
    other = accounts[15]
    for p in (patient, other):
        suite.consent.grant(
            p.address,
            GrantTerms.for_category(
                p.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
            ),
        )
        grant_read(suite, p, hospital2)
    vault = KeyVault()
    _batch_id, (mine, theirs) = world["ehr"].anchor_batch(
        laboratory.address,
        [(patient.address, OBSERVATION), (other.address, {**OBSERVATION, "id": "other"})],
        vault,
        crypto.ReaderKey.from_private_key(private_key(laboratory)),
    )
    _service, lab = run_gateway(laboratory, world["store"], vault)
    world["ehr"].access(hospital2.address, mine, Purpose.TREAT)
    assert lab.read(world["ehr"], mine.id, local(hospital2)) == OBSERVATION
    with pytest.raises(GatewayForbidden, match="no audited access"):
        lab.fetch(world["ehr"], theirs.id, local(hospital2))
    # The batched record's custodian gateway is the only one that serves it.
    _service, hospital_gateway = world["gateway"]()
    with pytest.raises(GatewayNotFound):
        hospital_gateway.fetch(world["ehr"], mine.id, local(patient))


def test_retracted_batched_record_is_gone_at_the_gateway(
    suite, world, patient, laboratory, hospital2, private_key, run_gateway, local
):
    """A laboratory retracts one result of a batch: readers get 410, its neighbours still read."""
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
        ),
    )
    grant_read(suite, patient, hospital2)
    vault = KeyVault()
    _batch_id, (wrong, right) = world["ehr"].anchor_batch(
        laboratory.address,
        [(patient.address, OBSERVATION), (patient.address, {**OBSERVATION, "id": "right"})],
        vault,
        crypto.ReaderKey.from_private_key(private_key(laboratory)),
    )
    _service, lab = run_gateway(laboratory, world["store"], vault)
    world["ehr"].access(hospital2.address, wrong, Purpose.TREAT)
    world["ehr"].mark_batched_entered_in_error(laboratory.address, wrong, 2)
    with pytest.raises(GatewayError, match="entered-in-error") as info:
        lab.fetch(world["ehr"], wrong.id, local(hospital2))
    assert info.value.status == 410
    with pytest.raises(GatewayError, match="entered-in-error"):
        lab.fetch(world["ehr"], wrong.id, local(patient))
    with pytest.raises(ContractRevert, match="EHRRecordEnteredInError"):
        world["ehr"].access(hospital2.address, wrong, Purpose.TREAT)
    world["ehr"].access(hospital2.address, right, Purpose.TREAT)
    assert lab.read(world["ehr"], right.id, local(hospital2))["id"] == "right"


# ─── Look-alike events and signature tricks ───────────────────────────────────────────────


def _deploy_event_forger(sender, topics: list[bytes]) -> str:
    """A contract (raw bytecode) that emits LOG4 with the given topics and 96 zero data bytes."""
    runtime = b"".join(b"\x7f" + t for t in reversed(topics)) + bytes.fromhex("60606000a400")
    init = bytes([0x60, len(runtime), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + runtime
    tx = web3.eth.send_transaction({"from": sender, "data": "0x" + init.hex()})
    return str(web3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


def test_lookalike_contract_emitting_record_accessed_does_not_count(suite, world, patient, hospital2, local):
    """Anyone can deploy a contract that emits an event with RecordAccessed's signature and topics
    (record, accessor, patient): the gateway only reads events of the EHRIndex deployment."""
    ehr, record = world["ehr"], world["record"]
    _service, client = world["gateway"]()
    grant_read(suite, patient, hospital2)  # consent holds; only the audited access is missing
    signature = web3.keccak(text="RecordAccessed(bytes32,address,address,uint8,bytes32,bool)")
    topics = [bytes(signature), record.id] + [
        bytes(12) + bytes.fromhex(a.address[2:]) for a in (hospital2, patient)
    ]
    forger = _deploy_event_forger(hospital2.address, topics)
    tx = web3.eth.send_transaction({"from": hospital2.address, "to": forger})
    [log] = web3.eth.wait_for_transaction_receipt(tx)["logs"]
    assert bytes(log["topics"][1]) == record.id  # the look-alike event is on chain
    with pytest.raises(GatewayForbidden, match="no audited access"):
        client.fetch(ehr, record.id, local(hospital2))


def _malleate(signature: bytes) -> bytes:
    """The other valid signature of the same message and key: s -> n - s, recovery bit flipped."""
    sig = Signature(signature_bytes=signature[:64] + bytes([signature[64] - 27]))
    twin = Signature(vrs=(1 - sig.v, sig.r, SECP256K1_N - sig.s))
    return twin.to_bytes()[:64] + bytes([twin.v + 27])


def test_malleated_twin_of_a_used_signature_is_refused(world, patient, local):
    """ECDSA signatures come in pairs (s and n - s). The twin recovers the same reader, so only the
    challenge being single-use stops a replay by someone who saw the first release request."""
    _service, client = world["gateway"]()
    challenge = challenge_for(client, world["record"].id)
    signature = sign(challenge, bytes(local(patient).key))
    assert release(client, challenge, signature).status_code == 200
    answer = release(client, challenge, _malleate(signature))
    assert answer.status_code == 401
    assert "envelope" not in answer.json()


def test_hex_with_whitespace_is_refused_over_http(world):
    _service, client = world["gateway"]()
    answer = post(client, "/v1/challenges", {"record_id": "0x" + world["record"].id.hex()[:62] + "  "})
    assert answer.status_code == 400


# ─── Anchoring: never a record whose key nobody holds ──────────────────────────────────────


def test_anchor_without_the_custodians_key_is_refused_before_anything_is_sent(
    suite, world, patient, hospital
):
    """With readers that leave out the custodian, its gateway can never open the record; with no
    readers at all, the data key is gone the moment the record is anchored."""
    ehr, vault = world["ehr"], KeyVault()
    before = len(ehr.records_of(patient.address))
    for readers in ((), (world["keys"][patient.address],)):
        with pytest.raises(MedChainError, match="custodian"):
            ehr.anchor_resource(hospital.address, {**OBSERVATION, "id": "x"}, patient.address, vault, readers)
    assert len(ehr.records_of(patient.address)) == before
    assert len(vault) == 0


def test_batch_with_a_key_that_is_not_the_custodians_is_refused(
    suite, world, patient, laboratory, hospital, private_key
):
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
        ),
    )
    vault = KeyVault()
    with pytest.raises(MedChainError, match="custodian"):
        world["ehr"].anchor_batch(
            laboratory.address,
            [(patient.address, OBSERVATION)],
            vault,
            crypto.ReaderKey.from_private_key(private_key(hospital)),
        )
    assert len(vault) == 0
    assert world["ehr"].contract.events.BatchAnchored().get_logs(from_block=0) == []


class NodeDown:
    """Chain.transact while the node is unreachable: nothing is sent."""

    def __call__(self, fn, sender, value=0):
        raise TransactionFailed("the node could not be reached: connection refused")


def test_retry_naming_a_reader_the_first_attempt_did_not_is_refused(
    world, patient, hospital, hospital2, private_key, monkeypatch
):
    """The retry reuses the first attempt's key, which it cannot wrap again: it used to anchor the
    record and return as if the new reader's envelope had been made."""
    ehr, vault = world["ehr"], world["vault"]
    resource = {**OBSERVATION, "id": "retry"}
    custodian_only = (world["keys"][hospital.address],)
    monkeypatch.setattr(ehr.chain, "transact", NodeDown())
    with pytest.raises(TransactionFailed):
        ehr.anchor_resource(hospital.address, resource, patient.address, vault, custodian_only)
    monkeypatch.undo()
    more = (*custodian_only, world["keys"][patient.address])
    with pytest.raises(MedChainError, match=f"without a key for {patient.address}"):
        ehr.anchor_resource(hospital.address, resource, patient.address, vault, more)
    record = ehr.anchor_resource(hospital.address, resource, patient.address, vault, custodian_only)
    assert vault.readers(record.id) == {hospital.address}


def test_stale_staged_entry_is_never_reused_for_another_patient(
    suite, world, patient, hospital, accounts, monkeypatch
):
    """The same template resource staged for one patient (its transaction never sent) and then
    anchored for another: the retry key names the patient, so the second gets its own record."""
    other = accounts[15]
    suite.consent.grant(
        other.address,
        GrantTerms.for_all(other.address, hospital.address, Actions.APPEND, Purpose.TREAT),
    )
    ehr, vault = world["ehr"], world["vault"]
    resource = {**OBSERVATION, "id": "template"}
    custodian_only = (world["keys"][hospital.address],)
    monkeypatch.setattr(ehr.chain, "transact", NodeDown())
    with pytest.raises(TransactionFailed):
        ehr.anchor_resource(hospital.address, resource, patient.address, vault, custodian_only)
    monkeypatch.undo()
    record = ehr.anchor_resource(hospital.address, resource, other.address, vault, custodian_only)
    assert record.header.patient == other.address
    assert ehr.records_of(patient.address) == [world["record"]]  # nothing anchored for the first


def test_batch_retry_naming_a_patient_key_the_first_attempt_did_not_is_refused(
    suite, world, patient, laboratory, private_key, monkeypatch
):
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
        ),
    )
    ehr, vault = world["ehr"], KeyVault()
    lab_key = crypto.ReaderKey.from_private_key(private_key(laboratory))
    items = [(patient.address, OBSERVATION)]
    monkeypatch.setattr(ehr.chain, "transact", NodeDown())
    with pytest.raises(TransactionFailed):
        ehr.anchor_batch(laboratory.address, items, vault, lab_key)
    monkeypatch.undo()
    with pytest.raises(MedChainError, match="without a key for"):
        ehr.anchor_batch(
            laboratory.address, items, vault, lab_key, {patient.address: world["keys"][patient.address]}
        )
    batch_id, [record] = ehr.anchor_batch(laboratory.address, items, vault, lab_key)
    assert batch_id == 1
    assert ehr.in_batch(record)


# ─── What the public store tells an outsider ───────────────────────────────────────────────


def test_public_batch_index_size_does_not_tell_the_category(suite, world, patient, laboratory, private_key):
    """The index hides each record's category, but its sealed part held the category names, whose
    lengths differ: the size of a one-record batch's index told an Observation from a report."""
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, laboratory.address, Actions.APPEND, Purpose.TREAT),
    )
    ehr, store = world["ehr"], world["store"]
    lab_key = crypto.ReaderKey.from_private_key(private_key(laboratory))
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "HIV-1/2 Ab"}}
    sizes = []
    for resource in (OBSERVATION, report):
        batch_id, _records = ehr.anchor_batch(
            laboratory.address, [(patient.address, resource)], KeyVault(), lab_key
        )
        [log] = ehr.contract.events.BatchAnchored().get_logs(
            from_block=0, argument_filters={"batchId": batch_id}
        )
        sizes.append(len(store.get(cid_text(bytes(log["args"]["cid"])))))
    assert sizes[0] == sizes[1]


# ─── The reader's client facing a lying gateway ────────────────────────────────────────────


def relaying(real_url: str, rewrite):
    """A gateway in the middle: forwards to the real one, lets ``rewrite`` change release answers."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = httpx.request(
            request.method,
            str(request.url),
            content=request.content,
            headers={"content-type": "application/json"},
            timeout=10,
        )
        if request.url.path.endswith("/releases") and answer.status_code == 200:
            return httpx.Response(200, json=rewrite(answer.json()))
        return httpx.Response(answer.status_code, content=answer.content)

    return GatewayClient(real_url, http=httpx.Client(transport=httpx.MockTransport(handler)))


def test_client_refuses_a_batched_answer_the_batch_root_does_not_prove(
    suite, world, patient, laboratory, private_key, run_gateway, local
):
    suite.consent.grant(
        patient.address,
        GrantTerms.for_category(
            patient.address, laboratory.address, "Observation", Actions.APPEND, Purpose.TREAT
        ),
    )
    vault = KeyVault()
    _batch_id, records = world["ehr"].anchor_batch(
        laboratory.address,
        [(patient.address, OBSERVATION), (patient.address, {**OBSERVATION, "id": "2"})],
        vault,
        crypto.ReaderKey.from_private_key(private_key(laboratory)),
    )
    _service, lab = run_gateway(laboratory, world["store"], vault)

    def bad_proof(data):
        data["proof"] = ["0x" + "00" * 32 for _ in data["proof"]]
        return data

    with pytest.raises(IntegrityError, match="does not prove"):
        relaying(lab.url, bad_proof).fetch(world["ehr"], records[0].id, local(patient))


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {},
        {"typed_data": {"primaryType": "ReleaseRequest"}},
    ],
    ids=["list", "missing", "half"],
)
def test_client_turns_a_garbled_challenge_into_an_error_not_a_crash(world, patient, local, answer):
    client = GatewayClient(
        "http://gw.invalid",
        http=httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200, json=answer))),
    )
    with pytest.raises(MedChainError):
        client.fetch(world["ehr"], world["record"].id, local(patient))


@pytest.mark.parametrize("field", ["patient", "batch_id", "proof"])
def test_client_turns_a_garbled_release_into_an_integrity_error(world, patient, local, field):
    _service, client = world["gateway"]()
    garbage = {"patient": "0xnot-an-address", "batch_id": -1, "proof": ["0x00"]}

    def garble(data):
        if field == "patient":
            data["header"]["patient"] = garbage["patient"]
        else:
            data[field] = garbage[field]
        return data

    with pytest.raises(IntegrityError, match="malformed"):
        relaying(client.url, garble).fetch(world["ehr"], world["record"].id, local(patient))


def test_client_refuses_a_record_held_by_another_custodian_than_the_one_that_challenged(
    world, patient, hospital2, local
):
    """A gateway that challenges the reader in the name of one custodian and serves a record of
    another: the reader signed a request to hospital2, and must not take hospital's record for it."""
    _service, real = world["gateway"]()
    record = world["record"]
    genuine = challenge_for(real, record.id)
    served = release(real, genuine, sign(genuine, bytes(local(patient).key))).json()
    url = "http://gw.invalid"
    forged = replace(genuine, gateway=url, custodian=hospital2.address)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/challenges"):
            issued = {"challenge": "0x" + forged.nonce.hex(), "typed_data": forged.typed_data()}
            return httpx.Response(200, json=issued)
        return httpx.Response(200, json=served)

    liar = GatewayClient(url, http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(IntegrityError, match="not by the custodian"):
        liar.fetch(world["ehr"], record.id, local(patient))
