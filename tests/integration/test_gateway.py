"""The custodian gateway attacked over HTTP: every rule of the release, tried by someone who wants
round it (forged headers, other people's addresses, replays, stale or revoked access, another
custodian's record, oversized and flooding requests, a lying gateway)."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from brownie import chain
from eth_account import Account

from medchain import crypto
from medchain.consent import GrantTerms
from medchain.ehr import IntegrityError, KeyVault
from medchain.gateway import GatewayClient, ReleaseLog, verify_log
from medchain.gateway.protocol import sign
from medchain.gateway.service import (
    GatewayError,
    GatewayForbidden,
    GatewayNotFound,
    GatewayRateLimited,
    GatewayUnauthenticated,
)
from medchain.store import LocalFolderStore
from medchain.types import Actions, Purpose
from tests.helpers import gateway_challenge, gateway_post, gateway_release

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "valueQuantity": {"value": 11.4, "unit": "mmol/L"},
}


class Clock:
    """A wall clock the test moves (challenge expiry, rate-limit refill)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(suite, tmp_path, patient, hospital, hospital2, private_key, run_gateway):
    store = LocalFolderStore(tmp_path / "store")
    vault = KeyVault(tmp_path / "hospital-vault.sqlite")
    log = ReleaseLog(tmp_path / "releases.jsonl")
    clock = Clock()
    ehr = suite.ehr(store)
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital.address, Actions.READ | Actions.APPEND, Purpose.TREAT),
    )
    keys = (
        crypto.ReaderKey.from_private_key(private_key(hospital)),
        crypto.ReaderKey.from_private_key(private_key(patient)),
    )
    record = ehr.anchor_resource(hospital.address, OBSERVATION, patient.address, vault, keys)
    service, client = run_gateway(hospital, store, vault, clock=clock, log=log)
    return {
        "ehr": ehr,
        "store": store,
        "vault": vault,
        "record": record,
        "service": service,
        "client": client,
        "clock": clock,
        "log": log,
    }


def grant_read(suite, patient, grantee):
    return suite.consent.grant(
        patient.address,
        GrantTerms.for_category(patient.address, grantee.address, "Observation", Actions.READ, Purpose.TREAT),
    )


post, challenge_for, release = gateway_post, gateway_challenge, gateway_release


# ─── Who may read ───────────────────────────────────────────────────────────────────────────


def test_patient_and_custodian_read_without_an_access_event(setup, patient, hospital, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    assert client.read(ehr, record.id, local(patient)) == OBSERVATION
    assert client.read(ehr, record.id, local(hospital)) == OBSERVATION


def test_reader_with_consent_and_recent_access_event_reads(suite, setup, patient, hospital2, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, record, Purpose.TREAT)
    assert client.read(ehr, record.id, local(hospital2)) == OBSERVATION


def test_consent_without_audited_access_is_refused(suite, setup, patient, hospital2, local):
    """A consent alone is not enough: the read must first leave its audit event on chain."""
    grant_read(suite, patient, hospital2)
    with pytest.raises(GatewayForbidden, match="no audited access"):
        setup["client"].fetch(setup["ehr"], setup["record"].id, local(hospital2))


def test_outsider_naming_itself_the_patient_gets_nothing(setup, patient, outsider, local):
    """The request carries no reader or header: extra fields are refused, and the signer is who reads."""
    client, record = setup["client"], setup["record"]
    forged = post(
        client,
        "/v1/challenges",
        {
            "record_id": "0x" + record.id.hex(),
            "reader": patient.address,
            "header": {"patient": outsider.address, "custodian": outsider.address},
        },
    )
    assert forged.status_code == 400
    challenge = challenge_for(client, record.id)
    signature = sign(challenge, bytes(local(outsider).key))
    answer = post(
        client,
        "/v1/releases",
        {
            "challenge": "0x" + challenge.nonce.hex(),
            "signature": "0x" + signature.hex(),
            "reader": patient.address,
        },
    )
    assert answer.status_code == 400
    answer = release(client, challenge_for(client, record.id), signature)  # a signature over another nonce
    assert answer.status_code in (401, 403)
    answer = release(client, (c := challenge_for(client, record.id)), sign(c, bytes(local(outsider).key)))
    assert answer.status_code == 403
    assert "ciphertext" not in answer.json()
    assert "envelope" not in answer.json()


def test_patients_signature_over_another_challenge_does_not_verify_as_the_patient(setup, patient, local):
    """A signature is bound to its nonce: replaying it on a new challenge recovers a stranger."""
    client, record = setup["client"], setup["record"]
    first = challenge_for(client, record.id)
    captured = sign(first, bytes(local(patient).key))
    second = challenge_for(client, record.id)
    answer = release(client, second, captured)
    assert answer.status_code in (401, 403)
    assert "envelope" not in answer.json()


def test_envelope_is_wrapped_to_the_signers_key_only(suite, setup, patient, hospital2, local, private_key):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, record, Purpose.TREAT)
    got = client.fetch(ehr, record.id, local(hospital2))
    with pytest.raises(crypto.CryptoError):
        ehr.open(got, private_key(patient))
    assert ehr.open(got, private_key(hospital2)) == OBSERVATION


# ─── Challenges ─────────────────────────────────────────────────────────────────────────────


def test_replayed_challenge_is_refused(setup, patient, local):
    client, record = setup["client"], setup["record"]
    challenge = challenge_for(client, record.id)
    signature = sign(challenge, bytes(local(patient).key))
    assert release(client, challenge, signature).status_code == 200
    again = release(client, challenge, signature)
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]


def test_expired_challenge_is_refused(setup, patient, local):
    client, record, clock = setup["client"], setup["record"], setup["clock"]
    challenge = challenge_for(client, record.id)
    signature = sign(challenge, bytes(local(patient).key))
    clock.now += setup["service"].settings.challenge_ttl + 1
    answer = release(client, challenge, signature)
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_failed_attempt_uses_up_the_challenge(setup, outsider, patient, local):
    """A refused attempt burns the nonce: it cannot be retried with a better signature."""
    client, record = setup["client"], setup["record"]
    challenge = challenge_for(client, record.id)
    assert release(client, challenge, sign(challenge, bytes(local(outsider).key))).status_code == 403
    assert release(client, challenge, sign(challenge, bytes(local(patient).key))).status_code == 401


def test_malformed_signature_and_ids_are_bad_requests(setup):
    client, record = setup["client"], setup["record"]
    assert post(client, "/v1/challenges", {"record_id": "0x1234"}).status_code == 400
    assert post(client, "/v1/challenges", {"record_id": "zz" * 32}).status_code == 400
    challenge = challenge_for(client, record.id)
    answer = post(client, "/v1/releases", {"challenge": "0x" + challenge.nonce.hex(), "signature": "0x00"})
    assert answer.status_code == 400
    assert httpx.post(client.url + "/v1/releases", content=b"not json", timeout=10).status_code == 400


# ─── Access events must be recent and still hold ────────────────────────────────────────────


def test_reader_with_stale_access_event_is_refused(suite, setup, patient, hospital2, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, record, Purpose.TREAT)
    chain.sleep(setup["service"].settings.access_window + 10)
    chain.mine()
    with pytest.raises(GatewayForbidden, match="older than"):
        client.fetch(ehr, record.id, local(hospital2))
    ehr.access(hospital2.address, record, Purpose.TREAT)  # a fresh audited access
    assert client.read(ehr, record.id, local(hospital2)) == OBSERVATION


def test_revocation_stops_releases_within_the_access_window(suite, setup, patient, hospital2, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    gid = grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, record, Purpose.TREAT)
    suite.consent.revoke(patient.address, gid)
    with pytest.raises(GatewayForbidden, match="no longer holds"):
        client.fetch(ehr, record.id, local(hospital2))


def test_access_event_for_another_record_does_not_count(suite, setup, patient, hospital, hospital2, local):
    ehr, client = setup["ehr"], setup["client"]
    other = ehr.anchor_resource(
        hospital.address,
        {**OBSERVATION, "valueQuantity": {"value": 4.0, "unit": "mmol/L"}},
        patient.address,
        setup["vault"],
        (crypto.ReaderKey.from_private_key(bytes(local(hospital).key)),),
    )
    grant_read(suite, patient, hospital2)
    ehr.access(hospital2.address, other, Purpose.TREAT)
    with pytest.raises(GatewayForbidden):
        client.fetch(ehr, setup["record"].id, local(hospital2))


def test_break_glass_release_stops_when_the_session_expires(
    suite, consent, setup, patient, hospital, hospital2, local, run_gateway
):
    ehr, record = setup["ehr"], setup["record"]
    # A gateway whose access window outlasts the session: the session's own end must stop releases.
    _service, client = run_gateway(hospital, setup["store"], setup["vault"], access_window=10**9)
    suite.consent.open_break_glass(hospital2.address, patient.address, hashlib.sha256(b"ER").digest())
    ehr.access(hospital2.address, record, Purpose.ETREAT)
    got = client.fetch(ehr, record.id, local(hospital2))
    assert ehr.open(got, bytes(local(hospital2).key)) == OBSERVATION
    chain.sleep(int(consent.breakGlassDuration()) + 10)
    chain.mine()
    with pytest.raises(GatewayForbidden, match="no longer holds"):
        client.fetch(ehr, record.id, local(hospital2))


def test_disputed_break_glass_session_stops_releases_at_once(suite, setup, patient, hospital2, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    justification = hashlib.sha256(b"ER").digest()
    session = suite.consent.open_break_glass(hospital2.address, patient.address, justification)
    ehr.access(hospital2.address, record, Purpose.ETREAT)
    suite.consent.review_break_glass(patient.address, session, accept=False)
    with pytest.raises(GatewayForbidden):
        client.fetch(ehr, record.id, local(hospital2))


# ─── Records: from the chain, this custodian's only ─────────────────────────────────────────


def test_record_of_another_custodian_is_refused(suite, setup, patient, hospital2, local, private_key):
    """hospital2's record asked at hospital's gateway: the header on chain names another custodian."""
    suite.consent.grant(
        patient.address,
        GrantTerms.for_all(patient.address, hospital2.address, Actions.APPEND, Purpose.TREAT),
    )
    theirs = setup["ehr"].anchor_resource(
        hospital2.address,
        OBSERVATION,
        patient.address,
        KeyVault(),
        (crypto.ReaderKey.from_private_key(private_key(hospital2)),),
    )
    with pytest.raises(GatewayNotFound, match="another custodian"):
        setup["client"].fetch(setup["ehr"], theirs.id, local(patient))


def test_unknown_record_is_not_found(setup, patient, local):
    with pytest.raises(GatewayNotFound):
        setup["client"].fetch(setup["ehr"], b"\x42" * 32, local(patient))


def test_entered_in_error_record_is_gone_except_for_the_custodian(setup, patient, hospital, local):
    ehr, client, record = setup["ehr"], setup["client"], setup["record"]
    ehr.mark_entered_in_error(hospital.address, record.id, 2)
    with pytest.raises(GatewayError, match="entered-in-error") as info:
        client.fetch(ehr, record.id, local(patient))
    assert info.value.status == 410
    assert client.read(ehr, record.id, local(hospital)) == OBSERVATION


# ─── The reader does not trust the gateway either ───────────────────────────────────────────


def test_client_refuses_a_challenge_naming_another_gateway(setup, patient, local):
    """A phishing gateway relaying another gateway's challenge: the origin signed in differs."""
    relay = GatewayClient(setup["client"].url.replace("127.0.0.1", "localhost"))
    with pytest.raises(IntegrityError, match="names gateway"):
        relay.fetch(setup["ehr"], setup["record"].id, local(patient))


def test_client_detects_a_gateway_lying_about_the_header(setup, patient, local):
    real = setup["client"]

    def lying(request: httpx.Request) -> httpx.Response:
        answer = httpx.request(
            request.method,
            str(request.url),
            content=request.content,
            headers={"content-type": "application/json"},
            timeout=10,
        )
        if request.url.path.endswith("/releases"):
            data = answer.json()
            data["header"]["category"] = "0x" + b"Condition".ljust(32, b"\0").hex()
            return httpx.Response(200, json=data)
        return httpx.Response(answer.status_code, content=answer.content)

    liar = GatewayClient(real.url, http=httpx.Client(transport=httpx.MockTransport(lying)))
    with pytest.raises(IntegrityError, match="does not hash"):
        liar.fetch(setup["ehr"], setup["record"].id, local(patient))


# ─── Limits and the log ─────────────────────────────────────────────────────────────────────


def test_oversized_body_is_refused(setup):
    url = setup["client"].url + "/v1/challenges"
    big = {"record_id": "0x" + "00" * 32, "pad": "x" * 10_000}
    assert httpx.post(url, json=big, timeout=10).status_code == 413

    def chunks():
        yield b'{"record_id": "'
        for _ in range(20):
            yield b"0" * 1000
        yield b'"}'

    assert httpx.post(url, content=chunks(), timeout=10).status_code == 413  # no Content-Length


def test_flooding_client_is_rate_limited(setup):
    settings = setup["service"].settings
    url = setup["client"].url + "/v1/health"
    statuses = [httpx.get(url, timeout=10).status_code for _ in range(settings.burst_per_client + 5)]
    assert statuses[: settings.burst_per_client] == [200] * settings.burst_per_client
    assert statuses[-1] == 429
    limited = httpx.get(url, timeout=10)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    setup["clock"].now += 10  # the bucket refills with time
    assert httpx.get(url, timeout=10).status_code == 200


def test_one_reader_is_rate_limited_across_challenges(setup, patient, local):
    client, record = setup["client"], setup["record"]
    settings = setup["service"].settings
    for _ in range(settings.burst_per_reader):
        client.fetch(setup["ehr"], record.id, local(patient))
    with pytest.raises(GatewayRateLimited):
        client.fetch(setup["ehr"], record.id, local(patient))


def test_release_log_records_releases_and_refusals_and_is_tamper_evident(
    setup, tmp_path, patient, outsider, local
):
    client, record = setup["client"], setup["record"]
    client.fetch(setup["ehr"], record.id, local(patient))
    with pytest.raises(GatewayForbidden):
        client.fetch(setup["ehr"], record.id, local(outsider))
    path = tmp_path / "releases.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["event"], x["reader"], x["status"]) for x in lines] == [
        ("release", patient.address, 200),
        ("refusal", outsider.address, 403),
    ]
    assert all(x["record"] == "0x" + record.id.hex() for x in lines)
    assert verify_log(path) == 2
    text = path.read_text().replace('"status": 403', '"status": 200')
    path.write_text(text)
    with pytest.raises(GatewayError, match="line 2"):
        verify_log(path)


def test_release_log_holds_no_health_data(setup, tmp_path, patient, outsider, local):
    setup["client"].fetch(setup["ehr"], setup["record"].id, local(patient))
    text = (tmp_path / "releases.jsonl").read_text()
    for needle in ("Glucose", "11.4", "mmol", "2339-0"):
        assert needle not in text


def test_unauthenticated_error_type_maps_from_http(setup):
    """The SDK raises the same error classes the service raises (401 -> GatewayUnauthenticated)."""
    client = setup["client"]
    challenge = challenge_for(client, setup["record"].id)
    stranger = Account.create()
    signature = sign(challenge, bytes(stranger.key))
    release(client, challenge, signature)  # uses the challenge up
    with pytest.raises(GatewayUnauthenticated):
        client._call(
            "POST",
            "/v1/releases",
            {"challenge": "0x" + challenge.nonce.hex(), "signature": "0x" + signature.hex()},
        )
