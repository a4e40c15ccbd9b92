"""Property: whatever the sequence of grants (by the patient or a guardian), revocations, guardian
appointments and removals, break-glass sessions and their reviews, time and suspensions,
checkAccess says yes exactly when the consent rules say yes (so never where they say no), and
openBreakGlass is refused exactly when the dispute rules say so."""

from __future__ import annotations

import hashlib

import pytest
from brownie import ConsentManager, InstitutionRegistry, chain
from brownie.exceptions import VirtualMachineError
from brownie.test import strategy

from medchain.deploy import FoundingMember
from medchain.types import NO_END, GovernanceAction, Kind, ScopeKind, category_code
from tests.fixtures.deployments import licence

RECORDS = [hashlib.sha256(f"r{i}".encode()).digest() for i in range(2)]
CATEGORIES = [category_code("Observation"), category_code("Condition")]
ZERO32 = b"\0" * 32
JUSTIFICATION = hashlib.sha256(b"emergency").digest()
DAY = 24 * 3600
SESSION = DAY  # the suite's default break-glass duration
WINDOW = 30 * DAY
LIMIT = 3
READ, ETREAT = 1, 3


@pytest.fixture
def setup(deploy, accounts):
    # Founder 100 against two hospitals of 1: the founder alone reaches quorum, so suspending or
    # reinstating is one transaction and the machine can interleave it freely.
    hospitals = [accounts[11], accounts[12]]
    members = [FoundingMember(h.address, Kind.HOSPITAL, 1, licence(str(i))) for i, h in enumerate(hospitals)]
    suite = deploy(members, founder_rating=100)
    return (
        InstitutionRegistry.at(suite.registry.address),
        ConsentManager.at(suite.deployment.address_of("ConsentManager")),
        hospitals,
        accounts[15],
        [accounts[16], accounts[17]],
    )


class ConsentMachine:
    grantee_ix = strategy("uint8", max_value=2)  # two hospitals and one person
    scope_ix = strategy("uint8", max_value=4)  # record 0/1, category 0/1, all
    actions = strategy("uint8", min_value=1, max_value=7)
    purposes = strategy("uint8", min_value=1, max_value=15)
    start = strategy("uint16", max_value=2000)
    length = strategy("uint16", min_value=1, max_value=4000)
    delay = strategy("uint16", max_value=3000)
    days = strategy("uint8", max_value=40)
    pick = strategy("uint8")
    accept = strategy("bool")

    def __init__(cls, registry, consent, hospitals, person, guardians, patient, regulator):  # noqa: N805 - brownie calls it on the class
        cls.registry, cls.consent, cls.patient, cls.regulator = registry, consent, patient, regulator
        cls.grantees = [*hospitals, person]
        cls.hospitals = hospitals
        cls.guardians = guardians

    def setup(self):
        # (grantee, kind, value) -> [actions, purposes, notBefore, notAfter, revoked, (guardian, term) | None]
        self.grants = {}
        self.suspended = set()
        self.guardianship = {g.address: (False, 0) for g in self.guardians}  # -> (active, term)
        self.sessions = {}  # id -> [institution, expiresAt, pending]
        self.latest = {}  # institution -> session id
        self.disputes = {h.address: [] for h in self.hospitals}  # dispute times
        self.pair_disputed = {}  # institution -> last dispute time (one patient in this machine)

    def _scope(self, ix):
        if ix < 2:
            return ScopeKind.RECORD, RECORDS[ix]
        if ix < 4:
            return ScopeKind.CATEGORY, CATEGORIES[ix - 2]
        return ScopeKind.ALL, ZERO32

    # ─── Grants ──────────────────────────────────────────────────────────────────────────

    def _grant(self, actor, by, grantee_ix, scope_ix, actions, purposes, start, length):
        grantee = self.grantees[grantee_ix]
        kind, value = self._scope(scope_ix)
        now = chain[-1].timestamp
        nb, na = now + start, now + start + length
        if length > 3500:
            na = NO_END
        self.consent.grant(
            (self.patient, grantee, int(kind), value, actions, purposes, nb, na), {"from": actor}
        )
        self.grants[(grantee.address, kind, value)] = [actions, purposes, nb, na, False, by]

    def rule_grant(self, grantee_ix, scope_ix, actions, purposes, start, length):
        self._grant(self.patient, None, grantee_ix, scope_ix, actions, purposes, start, length)

    def rule_grant_by_guardian(self, pick, grantee_ix, scope_ix, actions, purposes, start, length):
        guardian = self.guardians[pick % 2]
        active, term = self.guardianship[guardian.address]
        if not active:
            with pytest.raises(VirtualMachineError, match="ConsentNotPatientOrGuardian"):
                self._grant(guardian, None, grantee_ix, scope_ix, actions, purposes, start, length)
            return
        self._grant(
            guardian, (guardian.address, term), grantee_ix, scope_ix, actions, purposes, start, length
        )

    def rule_guardian_grants_to_a_guardian(self, pick):
        guardian, grantee = self.guardians[pick % 2], self.guardians[(pick // 2) % 2]
        active, _ = self.guardianship[guardian.address]
        if grantee != guardian and not self.guardianship[grantee.address][0]:
            return  # not a guardian (yet): an ordinary grantee, which this machine does not use
        error = "ConsentGrantToGuardian" if active else "ConsentNotPatientOrGuardian"
        with pytest.raises(VirtualMachineError, match=error):
            self.consent.grant(
                (self.patient, grantee, int(ScopeKind.ALL), ZERO32, 1, 1, 0, NO_END), {"from": guardian}
            )

    def rule_revoke(self, pick):
        live = [k for k, v in self.grants.items() if not v[4]]
        if not live:
            return
        key = live[pick % len(live)]
        self.consent.revoke(
            self.consent.grantIdFor(self.patient, key[0], int(key[1]), key[2]), {"from": self.patient}
        )
        self.grants[key][4] = True

    def rule_toggle_guardian(self, pick):
        guardian = self.guardians[pick % 2]
        active, term = self.guardianship[guardian.address]
        if active:
            self.consent.removeGuardian(guardian, {"from": self.patient})
            self.guardianship[guardian.address] = (False, term)
        else:
            self.consent.addGuardian(guardian, {"from": self.patient})
            self.guardianship[guardian.address] = (True, term + 1)

    # ─── Time and governance ─────────────────────────────────────────────────────────────

    def rule_wait(self, delay):
        chain.sleep(delay)
        chain.mine()

    def rule_wait_days(self, days):
        chain.sleep(days * DAY)
        chain.mine()

    def rule_toggle_suspension(self, pick):
        hospital = self.hospitals[pick % 2]
        action = (
            GovernanceAction.REINSTATE if hospital.address in self.suspended else GovernanceAction.SUSPEND
        )
        self.registry.proposeChange(hospital, int(action), 0, {"from": self.regulator})
        self.suspended ^= {hospital.address}

    # ─── Break-glass ─────────────────────────────────────────────────────────────────────

    def _limited_until(self, institution):
        times = self.disputes[institution]
        return times[-LIMIT] + WINDOW if len(times) >= LIMIT else 0

    def _refusal(self, institution, now):
        """Why openBreakGlass must fail at time ``now``, or None."""
        if institution in self.suspended:
            return "ConsentNotCareProvider"
        if now < self._limited_until(institution):
            return "ConsentBreakGlassLimitReached"
        if now < self.pair_disputed.get(institution, -WINDOW) + WINDOW:
            return "ConsentBreakGlassDisputedForPatient"
        return None

    def rule_open_break_glass(self, pick):
        institution = self.hospitals[pick % 2].address
        try:
            tx = self.consent.openBreakGlass(self.patient, JUSTIFICATION, {"from": institution})
        except VirtualMachineError as exc:
            refusal = self._refusal(institution, chain[-1].timestamp)
            assert refusal is not None, exc.revert_msg  # noqa: PT017
            assert exc.revert_msg.startswith(refusal), (exc.revert_msg, refusal)  # noqa: PT017
            return
        assert self._refusal(institution, tx.timestamp) is None
        sid = tx.events["BreakGlassOpened"]["sessionId"]
        self.sessions[sid] = [institution, tx.timestamp + SESSION, True]
        self.latest[institution] = sid

    def rule_review(self, pick, accept):
        pending = [sid for sid, s in self.sessions.items() if s[2]]
        if not pending:
            return
        sid = pending[pick % len(pending)]
        tx = self.consent.reviewBreakGlass(sid, accept, {"from": self.regulator})
        self.sessions[sid][2] = False
        if accept:
            return
        institution, now = self.sessions[sid][0], tx.timestamp
        # A pair's dispute counts against the limit once per window (one patient in this machine).
        if now >= self.pair_disputed.get(institution, -WINDOW) + WINDOW:
            self.disputes[institution].append(now)
        self.pair_disputed[institution] = now
        for ended in {sid, self.latest[institution]}:
            self.sessions[ended][1] = min(self.sessions[ended][1], now - 1)

    # ─── Invariants ──────────────────────────────────────────────────────────────────────

    def _granted(self, grantee, record, category, action, purpose, now):
        for key in (
            (grantee, ScopeKind.RECORD, record),
            (grantee, ScopeKind.CATEGORY, category),
            (grantee, ScopeKind.ALL, ZERO32),
        ):
            g = self.grants.get(key)
            if not g or g[4] or not (g[0] & action and g[1] & (1 << purpose) and g[2] <= now <= g[3]):
                continue
            if g[5] is not None and self.guardianship[g[5][0]] != (True, g[5][1]):
                continue  # a guardian's grant whose guardianship ended
            return True
        return False

    def _expected(self, grantee, record, category, action, purpose):
        if grantee in self.suspended:
            return False
        now = chain[-1].timestamp
        if self._granted(grantee, record, category, action, purpose, now):
            return True
        if action != READ or purpose != ETREAT or grantee not in self.latest:
            return False
        expires = self.sessions[self.latest[grantee]][1]
        return now <= expires and now >= self._limited_until(grantee)

    def invariant_check_access_matches_rules(self):
        for grantee in self.grantees:
            for record, category in (
                (RECORDS[0], CATEGORIES[0]),
                (RECORDS[1], CATEGORIES[1]),
                (ZERO32, CATEGORIES[0]),
            ):
                for action, purpose in ((1, 0), (2, 0), (4, 0), (1, 2), (2, 2), (1, ETREAT), (2, ETREAT)):
                    got = self.consent.checkAccess(self.patient, grantee, record, category, action, purpose)[
                        0
                    ]
                    want = self._expected(grantee.address, record, category, action, purpose)
                    assert got == want, (grantee, record.hex()[:8], category, action, purpose)

    def invariant_guardians_never_hold_access(self):
        for guardian in self.guardians:
            for purpose in (0, ETREAT):
                assert not self.consent.checkAccess(self.patient, guardian, ZERO32, ZERO32, READ, purpose)[0]


def test_check_access_never_exceeds_the_rules(state_machine, setup, patient, regulator):
    registry, consent, hospitals, person, guardians = setup
    state_machine(
        ConsentMachine,
        registry,
        consent,
        hospitals,
        person,
        guardians,
        patient,
        regulator,
        settings={"max_examples": 15, "stateful_step_count": 12},
    )
