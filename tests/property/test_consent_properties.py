"""Property: whatever the sequence of grants, revocations, time and suspensions, checkAccess says
yes exactly when the consent rules say yes (so never where they say no)."""

from __future__ import annotations

import hashlib

import pytest
from brownie import ConsentManager, InstitutionRegistry, chain
from brownie.test import strategy

from medchain.consent import NO_END, ScopeKind, category_code
from medchain.deploy import FoundingMember
from medchain.types import Action, Kind
from tests.fixtures.deployments import licence

RECORDS = [hashlib.sha256(f"r{i}".encode()).digest() for i in range(2)]
CATEGORIES = [category_code("Observation"), category_code("Condition")]
ZERO32 = b"\0" * 32


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
    )


class ConsentMachine:
    grantee_ix = strategy("uint8", max_value=2)  # two hospitals and one person
    scope_ix = strategy("uint8", max_value=4)  # record 0/1, category 0/1, all
    actions = strategy("uint8", min_value=1, max_value=7)
    purposes = strategy("uint8", min_value=1, max_value=15)
    start = strategy("uint16", max_value=2000)
    length = strategy("uint16", min_value=1, max_value=4000)
    delay = strategy("uint16", max_value=3000)
    pick = strategy("uint8")

    def __init__(cls, registry, consent, hospitals, person, patient, regulator):  # noqa: N805 - brownie calls it on the class
        cls.registry, cls.consent, cls.patient, cls.regulator = registry, consent, patient, regulator
        cls.grantees = [*hospitals, person]
        cls.hospitals = hospitals

    def setup(self):
        self.grants = {}  # (grantee, kind, value) -> (actions, purposes, notBefore, notAfter, revoked)
        self.suspended = set()

    def _scope(self, ix):
        if ix < 2:
            return ScopeKind.RECORD, RECORDS[ix]
        if ix < 4:
            return ScopeKind.CATEGORY, CATEGORIES[ix - 2]
        return ScopeKind.ALL, ZERO32

    def rule_grant(self, grantee_ix, scope_ix, actions, purposes, start, length):
        grantee = self.grantees[grantee_ix]
        kind, value = self._scope(scope_ix)
        now = chain[-1].timestamp
        nb, na = now + start, now + start + length
        if length > 3500:
            na = NO_END
        self.consent.grant(
            (self.patient, grantee, int(kind), value, actions, purposes, nb, na), {"from": self.patient}
        )
        self.grants[(grantee.address, kind, value)] = (actions, purposes, nb, na, False)

    def rule_revoke(self, pick):
        live = [k for k, v in self.grants.items() if not v[4]]
        if not live:
            return
        key = live[pick % len(live)]
        self.consent.revoke(
            self.consent.grantIdFor(self.patient, key[0], int(key[1]), key[2]), {"from": self.patient}
        )
        self.grants[key] = (*self.grants[key][:4], True)

    def rule_wait(self, delay):
        chain.sleep(delay)
        chain.mine()

    def rule_toggle_suspension(self, pick):
        hospital = self.hospitals[pick % 2]
        action = Action.REINSTATE if hospital.address in self.suspended else Action.SUSPEND
        self.registry.proposeChange(hospital, int(action), 0, {"from": self.regulator})
        self.suspended ^= {hospital.address}

    def _expected(self, grantee, record, category, action, purpose):
        if grantee in self.suspended:
            return False
        now = chain[-1].timestamp
        for key in (
            (grantee, ScopeKind.RECORD, record),
            (grantee, ScopeKind.CATEGORY, category),
            (grantee, ScopeKind.ALL, ZERO32),
        ):
            g = self.grants.get(key)
            if g and not g[4] and g[0] & action and g[1] & (1 << purpose) and g[2] <= now <= g[3]:
                return True
        return False

    def invariant_check_access_matches_rules(self):
        for grantee in self.grantees:
            for record, category in (
                (RECORDS[0], CATEGORIES[0]),
                (RECORDS[1], CATEGORIES[1]),
                (ZERO32, CATEGORIES[0]),
            ):
                for action in (1, 2, 4):
                    for purpose in (0, 2):
                        got = self.consent.checkAccess(
                            self.patient, grantee, record, category, action, purpose
                        )[0]
                        want = self._expected(grantee.address, record, category, action, purpose)
                        assert got == want, (grantee, record.hex()[:8], category, action, purpose)


def test_check_access_never_exceeds_the_rules(state_machine, setup, patient, regulator):
    registry, consent, hospitals, person = setup
    state_machine(
        ConsentMachine,
        registry,
        consent,
        hospitals,
        person,
        patient,
        regulator,
        settings={"max_examples": 15, "stateful_step_count": 12},
    )
