"""InstitutionRegistry as Besu's QBFT validator contract: `getValidators()` and the rule behind it.

The rule (IInstitutionRegistry.getValidators): active hospitals, specialist hospitals, insurers and
the regulator with a credit rating of at least 60, the top 7 by governance weight, equal weights
to the lower address; if none meets the rating, the top 7 of those kinds regardless of it.
Governance changes reach the set only through real proposals and votes here.
"""

from __future__ import annotations

import pytest
from brownie import InstitutionRegistry, chain

from medchain.types import GovernanceAction, Kind, MemberStatus, ProposalStatus, kind_mask
from tests.fixtures.deployments import licence
from tests.helpers import reverts

DAY = 24 * 3600
MIN_RATING = 60
MAX_VALIDATORS = 7
ELIGIBLE = (Kind.HOSPITAL, Kind.SPECIALIST_HOSPITAL, Kind.INSURER, Kind.REGULATOR)
INELIGIBLE = (
    Kind.COMMUNITY_CLINIC,
    Kind.LABORATORY,
    Kind.PHARMACY,
    Kind.MANUFACTURER,
    Kind.DISTRIBUTOR,
)


def synthetic(i: int) -> str:
    """A member address no test signs for (bootstrap admits any address)."""
    return "0x" + f"{0xA11CE000 + i:040x}"


def ranked(registry, accounts) -> list[str]:
    """The expected order: weight high to low, then address low to high."""
    return sorted(accounts, key=lambda a: (-registry.weightOf(a), int(str(a), 16)))


def validators(registry) -> list[str]:
    return [str(a) for a in registry.getValidators()]


@pytest.fixture
def make_registry(regulator):
    """Factory: a registry founded by `regulator`, with bootstrap members (address, kind, rating)."""

    def _make(members=(), founder_rating=90, end_bootstrap=True):
        registry = InstitutionRegistry.deploy(
            regulator, founder_rating, licence("regulator"), 0, DAY, {"from": regulator}
        )
        for account, kind, rating in members:
            registry.bootstrapMember(account, kind, rating, licence(str(account)), {"from": regulator})
        if end_bootstrap:
            registry.endBootstrap({"from": regulator})
        return registry

    return _make


# ─── Governance helpers: every change below is a real proposal carried by real votes ─────


def opened_id(tx) -> int:
    return tx.events["ProposalOpened"]["proposalId"]


def carry(registry, proposal_id, voters):
    """Votes yes with those of `voters` who may vote (active, not yet voted) until it executes."""
    for voter in voters:
        if registry.proposal(proposal_id)["status"] != ProposalStatus.OPEN:
            break
        if registry.statusOf(voter) == MemberStatus.ACTIVE and not registry.hasVoted(proposal_id, voter):
            registry.vote(proposal_id, True, {"from": voter})
    assert registry.proposal(proposal_id)["status"] == ProposalStatus.EXECUTED


def govern(registry, proposer, member, action, voters, rating=0):
    pid = opened_id(registry.proposeChange(member, action, rating, {"from": proposer}))
    carry(registry, pid, voters)
    return pid


@pytest.fixture
def voters(hospital, hospital2, insurer, laboratory, manufacturer, pharmacy, distributor):
    """Every member of the standard consortium but the founder, heaviest first."""
    return [hospital, hospital2, insurer, laboratory, manufacturer, pharmacy, distributor]


# ─── The rule's parameters ────────────────────────────────────────────────────────────────


def test_validator_policy_exposes_kinds_minimum_rating_and_size(registry):
    mask, min_rating, max_validators = registry.validatorPolicy()
    assert mask == kind_mask(*ELIGIBLE)
    assert min_rating == MIN_RATING
    assert max_validators == MAX_VALIDATORS


def test_get_validators_has_besu_signature(registry):
    """Besu calls `getValidators()` (selector 0xb7ab4db5) and decodes one `address[]`."""
    abi = next(f for f in registry.abi if f.get("name") == "getValidators")
    assert abi["inputs"] == []
    assert [o["type"] for o in abi["outputs"]] == ["address[]"]
    assert abi["stateMutability"] == "view"
    assert registry.signatures["getValidators"] == "0xb7ab4db5"


# ─── Eligibility by kind ──────────────────────────────────────────────────────────────────


def test_standard_consortium_validators_are_the_eligible_kinds_ranked(
    registry, regulator, hospital, hospital2, insurer
):
    # laboratory and manufacturer are rated 60 and pharmacy 50: their kinds never validate.
    expected = ranked(registry, [regulator, hospital, hospital2, insurer])
    assert validators(registry) == [str(a) for a in expected]
    assert expected[:2] == [regulator, hospital]  # 90, 80; then the two 70s by address


@pytest.mark.parametrize("kind", ELIGIBLE)
def test_eligible_kind_validates(make_registry, kind):
    registry = make_registry([(synthetic(1), kind, 75)])
    assert synthetic(1).lower() in [a.lower() for a in validators(registry)]


@pytest.mark.parametrize("kind", INELIGIBLE)
def test_ineligible_kind_never_validates_even_at_top_rating(make_registry, regulator, kind):
    registry = make_registry([(synthetic(1), kind, 100)], founder_rating=60)
    assert validators(registry) == [regulator]


# ─── Minimum rating ───────────────────────────────────────────────────────────────────────


def test_rating_below_minimum_does_not_validate(make_registry, regulator):
    registry = make_registry([(synthetic(1), Kind.HOSPITAL, MIN_RATING - 1)])
    assert validators(registry) == [regulator]


def test_rating_at_minimum_validates(make_registry, regulator):
    registry = make_registry([(synthetic(1), Kind.HOSPITAL, MIN_RATING)])
    assert [a.lower() for a in validators(registry)] == [regulator.address.lower(), synthetic(1).lower()]


# ─── Top N by weight, ties by address ─────────────────────────────────────────────────────


def test_only_the_top_n_by_weight_validate(make_registry, regulator):
    ratings = [95, 61, 88, 70, 99, 64, 77, 82, 60, 93]  # with the founder's 90: 11 candidates
    registry = make_registry(
        [(synthetic(i), ELIGIBLE[i % 3], r) for i, r in enumerate(ratings)], founder_rating=90
    )
    candidates = [regulator.address] + [synthetic(i) for i in range(len(ratings))]
    expected = ranked(registry, candidates)[:MAX_VALIDATORS]
    got = validators(registry)
    assert len(got) == MAX_VALIDATORS
    assert [a.lower() for a in got] == [str(a).lower() for a in expected]
    assert [registry.weightOf(a) for a in got] == [99, 95, 93, 90, 88, 82, 77]


def test_equal_weights_go_to_the_lower_address(make_registry):
    # Nine candidates all rated 70; admitted highest address first, so order of admission
    # cannot be what decides.
    members = [(synthetic(i), Kind.SPECIALIST_HOSPITAL, 70) for i in reversed(range(8))]
    registry = make_registry(members, founder_rating=70)
    got = [int(a, 16) for a in validators(registry)]
    everyone = sorted(int(a, 16) for a in [*(m[0] for m in members), registry.founder()])
    assert got == everyone[:MAX_VALIDATORS]


def test_tie_at_the_cut_off_goes_to_the_lower_address(make_registry, regulator):
    # Six above the cut, then three candidates tied at 65 for the last place.
    above = [(synthetic(10 + i), Kind.HOSPITAL, 80) for i in range(5)]
    tied = [(synthetic(i), Kind.INSURER, 65) for i in (7, 3, 5)]
    registry = make_registry(above + tied, founder_rating=90)
    got = [a.lower() for a in validators(registry)]
    assert len(got) == MAX_VALIDATORS
    assert got[-1] == synthetic(3).lower()
    assert synthetic(5).lower() not in got
    assert synthetic(7).lower() not in got


def test_validators_do_not_depend_on_admission_order(make_registry):
    members = [(synthetic(i), ELIGIBLE[i % 3], 60 + (i * 7) % 40) for i in range(12)]
    forward = validators(make_registry(members))
    backward = validators(make_registry(list(reversed(members))))
    assert forward == backward


def test_changzhou_shaped_alliance_names_seven_of_its_hospitals_insurers_and_regulator(make_registry):
    """23 institutions (3 tertiary, 12 community, 8 specialist), two insurers and the regulator."""
    members = (
        [(synthetic(i), Kind.HOSPITAL, 85 + i) for i in range(3)]
        + [(synthetic(10 + i), Kind.COMMUNITY_CLINIC, 95) for i in range(12)]
        + [(synthetic(30 + i), Kind.SPECIALIST_HOSPITAL, 62 + 3 * i) for i in range(8)]
        + [(synthetic(50), Kind.INSURER, 80), (synthetic(51), Kind.INSURER, 55)]
    )
    registry = make_registry(members)
    got = validators(registry)
    assert len(got) == MAX_VALIDATORS
    kinds = {Kind(registry.memberOf(a)["kind"]) for a in got}
    assert kinds <= set(ELIGIBLE)
    assert Kind.COMMUNITY_CLINIC not in kinds  # rated 95 each, still not validators
    assert [registry.weightOf(a) for a in got] == [90, 87, 86, 85, 83, 80, 80]


# ─── Governance: suspension, reinstatement, removal, rating, admission ────────────────────


def test_suspension_drops_a_validator(registry, regulator, hospital, voters):
    assert hospital in registry.getValidators()
    govern(registry, regulator, hospital, GovernanceAction.SUSPEND, voters)
    assert hospital not in registry.getValidators()


def test_open_suspension_proposal_does_not_drop_the_validator(registry, regulator, hospital):
    pid = opened_id(registry.proposeChange(hospital, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    assert registry.proposal(pid)["status"] == ProposalStatus.OPEN
    assert hospital in registry.getValidators()


def test_reinstatement_brings_the_validator_back(registry, regulator, hospital, voters):
    before = validators(registry)
    govern(registry, regulator, hospital, GovernanceAction.SUSPEND, voters)
    govern(registry, regulator, hospital, GovernanceAction.REINSTATE, voters)
    assert validators(registry) == before


def test_removal_drops_a_validator_for_good(registry, regulator, hospital2, voters):
    govern(registry, regulator, hospital2, GovernanceAction.REMOVE, voters)
    assert hospital2 not in registry.getValidators()
    # The way back in would be a new admission, which a removed address cannot get.
    with reverts("RegistryAlreadyMember", hospital2):
        registry.proposeAdmission(hospital2, Kind.HOSPITAL, 100, licence("again"), {"from": regulator})


def test_rating_change_below_minimum_drops_a_validator(registry, regulator, insurer, voters):
    govern(registry, regulator, insurer, GovernanceAction.CHANGE_RATING, voters, rating=MIN_RATING - 1)
    assert insurer not in registry.getValidators()


def test_rating_change_to_minimum_makes_an_eligible_member_a_validator(make_registry, regulator, hospital):
    registry = make_registry([(hospital.address, Kind.HOSPITAL, 50)])
    assert hospital not in registry.getValidators()
    pid = opened_id(
        registry.proposeChange(hospital, GovernanceAction.CHANGE_RATING, MIN_RATING, {"from": regulator})
    )
    carry(registry, pid, [hospital])
    assert validators(registry) == [regulator, hospital]


def test_rating_cut_while_suspended_applies_on_reinstatement(registry, regulator, insurer, voters):
    """Another path: lower the rating while suspended, then reinstate; the insurer stays out."""
    govern(registry, regulator, insurer, GovernanceAction.SUSPEND, voters)
    govern(registry, regulator, insurer, GovernanceAction.CHANGE_RATING, voters, rating=MIN_RATING - 1)
    govern(registry, regulator, insurer, GovernanceAction.REINSTATE, voters)
    assert registry.weightOf(insurer) == MIN_RATING - 1
    assert insurer not in registry.getValidators()


def test_admitted_hospital_validates_once_its_admission_executes(registry, regulator, applicant, voters):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 85, licence("a"), {"from": regulator})
    )
    assert applicant not in registry.getValidators()  # open: not yet
    carry(registry, pid, voters)
    assert validators(registry)[:2] == [regulator, applicant]


def test_suspending_a_top_n_validator_lets_the_next_in(make_registry, regulator, accounts):
    ratings = dict(zip(range(11, 19), (85, 80, 75, 70, 65, 62, 61, 60), strict=True))
    registry = make_registry([(accounts[i].address, Kind.HOSPITAL, r) for i, r in ratings.items()])
    first, next_in = accounts[11], accounts[17]  # 85 is in; 61 is eighth
    assert first in registry.getValidators()
    assert next_in not in registry.getValidators()
    heaviest = [accounts[i] for i in ratings]
    pid = opened_id(registry.proposeChange(first, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    carry(registry, pid, heaviest[1:])
    got = registry.getValidators()
    assert first not in got
    assert next_in in got
    assert len(got) == MAX_VALIDATORS


def test_set_changes_with_the_block_that_executes_the_change(registry, regulator, hospital, voters):
    """Besu reads the validators of block B + 1 from the state after block B."""
    pid = opened_id(registry.proposeChange(hospital, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    before = chain.height
    carry(registry, pid, voters)
    assert hospital in registry.getValidators(block_identifier=before)
    assert hospital not in registry.getValidators()


def test_outsider_cannot_change_the_validators(registry, regulator, hospital, outsider):
    before = validators(registry)
    with reverts("RegistryNotActiveMember", outsider):
        registry.proposeChange(hospital, GovernanceAction.SUSPEND, 0, {"from": outsider})
    with reverts("RegistryNotActiveMember", outsider):
        registry.proposeAdmission(outsider, Kind.HOSPITAL, 100, licence("o"), {"from": outsider})
    with reverts("RegistryNotFounder", outsider):
        registry.bootstrapMember(outsider, Kind.REGULATOR, 100, licence("o"), {"from": outsider})
    assert validators(registry) == before


def test_validator_cannot_raise_its_own_rating(registry, hospital):
    with reverts("RegistrySelfProposal", hospital, GovernanceAction.CHANGE_RATING):
        registry.proposeChange(hospital, GovernanceAction.CHANGE_RATING, 100, {"from": hospital})


# ─── Never empty; bootstrap ───────────────────────────────────────────────────────────────


def test_founder_alone_is_the_validator_at_deployment(make_registry, regulator):
    registry = make_registry(end_bootstrap=False)
    assert registry.bootstrapping()
    assert validators(registry) == [regulator]


def test_founding_members_validate_from_their_bootstrap_admission(make_registry, regulator, hospital):
    registry = make_registry(end_bootstrap=False)
    registry.bootstrapMember(hospital, Kind.HOSPITAL, 95, licence("h"), {"from": regulator})
    assert registry.bootstrapping()
    assert validators(registry) == [hospital, regulator]


def test_founder_below_minimum_still_validates_alone(make_registry, regulator):
    registry = make_registry(founder_rating=MIN_RATING - 10, end_bootstrap=False)
    assert validators(registry) == [regulator]


def test_set_falls_back_to_eligible_kinds_when_none_meets_minimum(
    registry, regulator, hospital, hospital2, insurer, pharmacy, voters
):
    for member in (hospital, hospital2, insurer):
        govern(registry, regulator, member, GovernanceAction.CHANGE_RATING, voters, rating=40)
    govern(registry, hospital, regulator, GovernanceAction.CHANGE_RATING, voters, rating=50)
    got = validators(registry)
    assert got[0] == regulator  # 50, then the three at 40 by address
    assert sorted(got) == sorted(str(a) for a in (regulator, hospital, hospital2, insurer))
    assert pharmacy not in got  # the fallback keeps the kind rule


def test_fallback_ends_once_a_member_meets_minimum(registry, regulator, hospital, hospital2, insurer, voters):
    for member in (hospital2, insurer):
        govern(registry, regulator, member, GovernanceAction.CHANGE_RATING, voters, rating=40)
    govern(registry, hospital, regulator, GovernanceAction.CHANGE_RATING, voters, rating=50)
    assert validators(registry) == [hospital]  # 80: the others drop out


def test_set_is_empty_only_when_no_eligible_member_is_active(make_registry, regulator, pharmacy):
    # A pharmacy rated 100 against a founder rated 40 passes a suspension alone (100/140 > 2/3).
    registry = make_registry([(pharmacy.address, Kind.PHARMACY, 100)], founder_rating=40)
    assert validators(registry) == [regulator]
    tx = registry.proposeChange(regulator, GovernanceAction.SUSPEND, 0, {"from": pharmacy})
    assert tx.events["ProposalExecuted"]
    assert validators(registry) == []


# ─── Bounded cost ─────────────────────────────────────────────────────────────────────────


def test_cost_is_bounded_by_member_count(make_registry):
    """Linear in members: about 4,900 gas for one that cannot validate, at most about 8,100 for a
    candidate (worst case: each new one outranks all kept, so N entries shift). A 1,000-member
    registry stays near 8M gas, far inside a QBFT block gas limit, which is what Besu allows."""

    def gas(members: int) -> int:
        # Ratings rising with admission order: every candidate enters at the top (the worst case).
        registry = make_registry([(synthetic(i), Kind.HOSPITAL, min(100, 1 + i)) for i in range(members)])
        return registry.getValidators.estimate_gas()

    small, large = gas(20), gas(100)
    per_member = (large - small) / 80
    assert per_member < 8_500, per_member
    assert large < 30_000 + 100 * 8_500


# ─── SDK ──────────────────────────────────────────────────────────────────────────────────


def test_sdk_reads_the_validators(suite, registry):
    assert suite.registry.validators() == [str(a) for a in registry.getValidators()]
