"""InstitutionRegistry: bootstrap, proposals, credit-weighted votes, every revert by name."""

from __future__ import annotations

import brownie
import pytest
from brownie import InstitutionRegistry

from medchain.types import GovernanceAction, Kind, MemberStatus, ProposalStatus, kind_mask
from tests.fixtures.deployments import RATINGS, licence
from tests.helpers import reverts

ZERO = "0x0000000000000000000000000000000000000000"
DAY = 24 * 3600
FOUNDER_RATING = 90
TOTAL = FOUNDER_RATING + sum(RATINGS.values())  # 520


def opened_id(tx) -> int:
    return tx.events["ProposalOpened"]["proposalId"]


def pass_with(registry, proposal_id, voters):
    for voter in voters:
        if registry.proposal(proposal_id)["status"] != ProposalStatus.OPEN:
            break
        registry.vote(proposal_id, True, {"from": voter})
    assert registry.proposal(proposal_id)["status"] == ProposalStatus.EXECUTED


@pytest.fixture
def big_voters(hospital, hospital2, insurer, laboratory):
    """With the regulator's 90, these reach the two-thirds quorum of 520 (347)."""
    return [hospital, hospital2, insurer, laboratory]


# ─── Deployment ────────────────────────────────────────────────────────────────────────────


def test_deploy_admits_founder_as_regulator(registry, regulator):
    member = registry.memberOf(regulator)
    assert member["kind"] == Kind.REGULATOR
    assert member["status"] == MemberStatus.ACTIVE
    assert member["rating"] == FOUNDER_RATING
    assert registry.founder() == regulator
    assert registry.quorumBps() == 6667
    assert registry.votingPeriod() == 3 * DAY
    assert registry.bootstrapping() is False
    assert registry.totalActiveWeight() == TOTAL


def test_constructor_rejects_zero_founder(regulator):
    with reverts("RegistryZeroAddress"):
        InstitutionRegistry.deploy(ZERO, 50, licence("x"), 0, DAY, {"from": regulator})


@pytest.mark.parametrize("quorum", [5000, 10001])
def test_constructor_rejects_bad_quorum(regulator, quorum):
    with reverts("RegistryInvalidQuorum", quorum):
        InstitutionRegistry.deploy(regulator, 50, licence("x"), quorum, DAY, {"from": regulator})


@pytest.mark.parametrize("period", [3599, 90 * DAY + 1])
def test_constructor_rejects_bad_voting_period(regulator, period):
    with reverts("RegistryInvalidVotingPeriod", period):
        InstitutionRegistry.deploy(regulator, 50, licence("x"), 0, period, {"from": regulator})


@pytest.mark.parametrize("rating", [0, 101])
def test_constructor_rejects_bad_founder_rating(regulator, rating):
    with reverts("RegistryInvalidRating", rating):
        InstitutionRegistry.deploy(regulator, rating, licence("x"), 0, DAY, {"from": regulator})


def test_constructor_rejects_zero_licence(regulator):
    with reverts("RegistryInvalidLicence"):
        InstitutionRegistry.deploy(regulator, 50, b"\x00" * 32, 0, DAY, {"from": regulator})


# ─── Bootstrap ─────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def fresh(regulator):
    """A registry still in bootstrap, with only the founder."""
    return InstitutionRegistry.deploy(
        regulator, FOUNDER_RATING, licence("regulator"), 0, DAY, {"from": regulator}
    )


def test_bootstrap_member_admits(fresh, regulator, hospital):
    tx = fresh.bootstrapMember(hospital, Kind.HOSPITAL, 80, licence("h"), {"from": regulator})
    assert tx.events["MemberAdmitted"]["account"] == hospital
    assert tx.events["MemberAdmitted"]["proposalId"] == 0
    assert fresh.isActive(hospital, Kind.HOSPITAL)
    assert not fresh.isActive(hospital, Kind.PHARMACY)
    assert fresh.weightOf(hospital) == 80
    assert fresh.totalActiveWeight() == FOUNDER_RATING + 80
    assert fresh.memberCount() == 2
    assert fresh.memberAt(1) == hospital


def test_bootstrap_member_by_non_founder_reverts(fresh, hospital, outsider):
    with reverts("RegistryNotFounder", outsider):
        fresh.bootstrapMember(hospital, Kind.HOSPITAL, 80, licence("h"), {"from": outsider})


def test_bootstrap_member_after_end_reverts(fresh, regulator, hospital):
    fresh.endBootstrap({"from": regulator})
    with reverts("RegistryBootstrapEnded"):
        fresh.bootstrapMember(hospital, Kind.HOSPITAL, 80, licence("h"), {"from": regulator})


@pytest.mark.parametrize(
    ("who", "kind", "rating", "lic", "error"),
    [
        ("zero", Kind.HOSPITAL, 80, "ok", "RegistryZeroAddress"),
        ("hospital", Kind.NONE, 80, "ok", "RegistryInvalidKind"),
        ("hospital", Kind.HOSPITAL, 0, "ok", "RegistryInvalidRating"),
        ("hospital", Kind.HOSPITAL, 101, "ok", "RegistryInvalidRating"),
        ("hospital", Kind.HOSPITAL, 80, "zero", "RegistryInvalidLicence"),
        ("regulator", Kind.HOSPITAL, 80, "ok", "RegistryAlreadyMember"),
    ],
)
def test_bootstrap_member_rejects_bad_input(fresh, regulator, hospital, who, kind, rating, lic, error):
    account = {"zero": ZERO, "hospital": hospital, "regulator": regulator}[who]
    digest = b"\x00" * 32 if lic == "zero" else licence("h")
    with reverts(error):
        fresh.bootstrapMember(account, kind, rating, digest, {"from": regulator})
    assert fresh.memberCount() == 1


def test_bootstrap_rejects_out_of_range_kind(fresh, regulator, hospital):
    # An enum value past the last kind fails ABI decoding before any state is touched.
    with brownie.reverts():
        fresh.bootstrapMember.call(hospital, 10, 80, licence("h"), {"from": regulator})


def test_end_bootstrap_emits_and_closes(fresh, regulator):
    tx = fresh.endBootstrap({"from": regulator})
    assert tx.events["BootstrapEnded"]["memberCount"] == 1
    assert fresh.bootstrapping() is False


def test_end_bootstrap_by_non_founder_reverts(fresh, outsider):
    with reverts("RegistryNotFounder", outsider):
        fresh.endBootstrap({"from": outsider})


def test_end_bootstrap_twice_reverts(fresh, regulator):
    fresh.endBootstrap({"from": regulator})
    with reverts("RegistryBootstrapEnded"):
        fresh.endBootstrap({"from": regulator})


def test_proposals_wait_for_bootstrap_end(fresh, regulator, applicant):
    with reverts("RegistryBootstrapActive"):
        fresh.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})


# ─── Admission ─────────────────────────────────────────────────────────────────────────────


def test_admission_passes_at_quorum(registry, regulator, applicant, big_voters):
    tx = registry.proposeAdmission(applicant, Kind.COMMUNITY_CLINIC, 30, licence("a"), {"from": regulator})
    pid = opened_id(tx)
    assert tx.events["VoteCast"]["weight"] == FOUNDER_RATING
    proposal = registry.proposal(pid)
    assert proposal["status"] == ProposalStatus.OPEN
    assert proposal["totalWeight"] == TOTAL
    assert proposal["yesWeight"] == FOUNDER_RATING
    pass_with(registry, pid, big_voters)
    assert registry.isActive(applicant, Kind.COMMUNITY_CLINIC)
    assert registry.totalActiveWeight() == TOTAL + 30


def test_admission_event_names_proposal(registry, regulator, applicant, hospital, hospital2, insurer):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.LABORATORY, 30, licence("a"), {"from": regulator})
    )
    registry.vote(pid, True, {"from": hospital})  # 170
    registry.vote(pid, True, {"from": hospital2})  # 240
    tx = registry.vote(pid, True, {"from": insurer})  # 310 < 347: still open
    assert "ProposalExecuted" not in tx.events
    tx = registry.vote(pid, True, {"from": registry.memberAt(3)})  # laboratory: 370
    assert tx.events["ProposalExecuted"]["proposalId"] == pid
    assert tx.events["MemberAdmitted"]["proposalId"] == pid


def test_propose_by_outsider_reverts(registry, outsider, applicant):
    with reverts("RegistryNotActiveMember", outsider):
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": outsider})


def test_propose_admission_of_member_reverts(registry, regulator, hospital):
    with reverts("RegistryAlreadyMember", hospital):
        registry.proposeAdmission(hospital, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})


@pytest.mark.parametrize(
    ("kind", "rating", "zero_licence", "error"),
    [
        (Kind.NONE, 50, False, "RegistryInvalidKind"),
        (Kind.HOSPITAL, 0, False, "RegistryInvalidRating"),
        (Kind.HOSPITAL, 50, True, "RegistryInvalidLicence"),
    ],
)
def test_propose_admission_rejects_bad_input(
    registry, regulator, applicant, kind, rating, zero_licence, error
):
    digest = b"\x00" * 32 if zero_licence else licence("a")
    with reverts(error):
        registry.proposeAdmission(applicant, kind, rating, digest, {"from": regulator})
    assert registry.proposalCount() == 0


def test_propose_admission_of_zero_address_reverts(registry, regulator):
    with reverts("RegistryZeroAddress"):
        registry.proposeAdmission(ZERO, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})


def test_second_open_proposal_for_subject_reverts(registry, regulator, hospital, applicant):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    with reverts("RegistrySubjectHasOpenProposal", applicant, GovernanceAction.ADMIT, pid):
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": hospital})


def test_stale_proposal_is_expired_when_replaced(registry, regulator, hospital, applicant, chain):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    chain.sleep(3 * DAY + 1)
    tx = registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": hospital})
    assert tx.events["ProposalExpired"]["proposalId"] == pid
    assert registry.proposal(pid)["status"] == ProposalStatus.EXPIRED
    assert registry.proposal(opened_id(tx))["status"] == ProposalStatus.OPEN


# ─── Quorum arithmetic ─────────────────────────────────────────────────────────────────────


@pytest.fixture
def weighted(deploy, accounts):
    """Founder 40, then 19, 1 and 40: total 100, quorum 60 %, so 60 weight passes and 59 does not."""
    from medchain.deploy import FoundingMember

    members = [
        FoundingMember(accounts[i].address, Kind.HOSPITAL, r, licence(str(i)))
        for i, r in ((11, 19), (12, 1), (13, 40))
    ]
    suite = deploy(members, founder_rating=40, quorum_bps=6000)
    return InstitutionRegistry.at(suite.registry.address)


def test_quorum_just_below_threshold_stays_open(weighted, regulator, accounts, applicant):
    pid = opened_id(
        weighted.proposeAdmission(applicant, Kind.HOSPITAL, 10, licence("a"), {"from": regulator})
    )
    tx = weighted.vote(pid, True, {"from": accounts[11]})
    assert weighted.proposal(pid)["yesWeight"] == 59
    assert weighted.proposal(pid)["status"] == ProposalStatus.OPEN
    assert "ProposalExecuted" not in tx.events
    assert not weighted.isActive(applicant, Kind.HOSPITAL)


def test_quorum_exactly_at_threshold_executes(weighted, regulator, accounts, applicant):
    pid = opened_id(
        weighted.proposeAdmission(applicant, Kind.HOSPITAL, 10, licence("a"), {"from": regulator})
    )
    weighted.vote(pid, True, {"from": accounts[11]})
    tx = weighted.vote(pid, True, {"from": accounts[12]})
    assert weighted.proposal(pid)["yesWeight"] == 60
    assert tx.events["ProposalExecuted"]["proposalId"] == pid
    assert weighted.isActive(applicant, Kind.HOSPITAL)


def test_proposal_rejected_once_quorum_unreachable(weighted, regulator, accounts, applicant):
    pid = opened_id(
        weighted.proposeAdmission(applicant, Kind.HOSPITAL, 10, licence("a"), {"from": regulator})
    )
    tx = weighted.vote(pid, False, {"from": accounts[12]})  # 1 no: 99 still reachable
    assert weighted.proposal(pid)["status"] == ProposalStatus.OPEN
    tx = weighted.vote(pid, False, {"from": accounts[13]})  # 41 no: at most 59 yes
    assert tx.events["ProposalRejected"]["proposalId"] == pid
    assert weighted.proposal(pid)["status"] == ProposalStatus.REJECTED
    assert weighted.proposal(pid)["noWeight"] == 41


# ─── Voting reverts ────────────────────────────────────────────────────────────────────────


@pytest.fixture
def open_admission(registry, regulator, applicant):
    return opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )


def test_double_vote_reverts(registry, open_admission, hospital):
    registry.vote(open_admission, True, {"from": hospital})
    with reverts("RegistryAlreadyVoted", open_admission, hospital):
        registry.vote(open_admission, False, {"from": hospital})


def test_proposer_cannot_vote_again(registry, open_admission, regulator):
    with reverts("RegistryAlreadyVoted", open_admission, regulator):
        registry.vote(open_admission, True, {"from": regulator})


def test_vote_after_deadline_reverts(registry, open_admission, hospital, chain):
    deadline = registry.proposal(open_admission)["deadline"]
    chain.sleep(3 * DAY + 1)
    with reverts("RegistryVotingClosed", open_admission, deadline):
        registry.vote(open_admission, True, {"from": hospital})


def test_vote_by_non_member_reverts(registry, open_admission, outsider):
    with reverts("RegistryNotActiveMember", outsider):
        registry.vote(open_admission, True, {"from": outsider})


@pytest.mark.parametrize("proposal_id", [0, 2])
def test_vote_on_unknown_proposal_reverts(registry, open_admission, hospital, proposal_id):
    with reverts("RegistryUnknownProposal", proposal_id):
        registry.vote(proposal_id, True, {"from": hospital})


def test_vote_on_closed_proposal_reverts(registry, open_admission, big_voters, pharmacy):
    pass_with(registry, open_admission, big_voters)
    with reverts("RegistryProposalNotOpen", open_admission, ProposalStatus.EXECUTED):
        registry.vote(open_admission, True, {"from": pharmacy})


def test_newcomer_cannot_vote_on_earlier_proposal(registry, regulator, applicant, accounts, big_voters):
    other = accounts[14]
    earlier = opened_id(
        registry.proposeAdmission(other, Kind.PHARMACY, 20, licence("o"), {"from": regulator})
    )
    admit = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    pass_with(registry, admit, big_voters)
    with reverts("RegistryNotEligibleVoter", earlier, applicant):
        registry.vote(earlier, True, {"from": applicant})


# ─── Expiry ────────────────────────────────────────────────────────────────────────────────


def test_expire_after_deadline(registry, open_admission, outsider, chain):
    chain.sleep(3 * DAY + 1)
    tx = registry.expire(open_admission, {"from": outsider})
    assert tx.events["ProposalExpired"]["proposalId"] == open_admission
    assert registry.proposal(open_admission)["status"] == ProposalStatus.EXPIRED


def test_expire_before_deadline_reverts(registry, open_admission, outsider):
    deadline = registry.proposal(open_admission)["deadline"]
    with reverts("RegistryVotingStillOpen", open_admission, deadline):
        registry.expire(open_admission, {"from": outsider})


def test_expire_closed_proposal_reverts(registry, open_admission, outsider, chain):
    chain.sleep(3 * DAY + 1)
    registry.expire(open_admission, {"from": outsider})
    with reverts("RegistryProposalNotOpen", open_admission, ProposalStatus.EXPIRED):
        registry.expire(open_admission, {"from": outsider})


def test_expire_unknown_proposal_reverts(registry, outsider):
    with reverts("RegistryUnknownProposal", 7):
        registry.expire(7, {"from": outsider})


# ─── Suspension, reinstatement, rating, removal ────────────────────────────────────────────


def change(registry, proposer, member, action, rating, voters):
    pid = opened_id(registry.proposeChange(member, action, rating, {"from": proposer}))
    pass_with(registry, pid, voters)
    return pid


def test_suspension_deactivates_and_removes_weight(registry, regulator, pharmacy, big_voters):
    pid = change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.SUSPENDED
    assert not registry.isActive(pharmacy, Kind.PHARMACY)
    assert registry.weightOf(pharmacy) == 0
    assert registry.totalActiveWeight() == TOTAL - RATINGS["pharmacy"]
    assert registry.proposal(pid)["status"] == ProposalStatus.EXECUTED


def test_suspended_member_cannot_propose_or_vote(registry, regulator, pharmacy, applicant, big_voters):
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    with reverts("RegistryNotActiveMember", pharmacy):
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": pharmacy})
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    with reverts("RegistryNotActiveMember", pharmacy):
        registry.vote(pid, True, {"from": pharmacy})


def test_reinstatement_restores_member(registry, regulator, pharmacy, big_voters):
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    tx_pid = change(registry, regulator, pharmacy, GovernanceAction.REINSTATE, 0, big_voters)
    assert registry.isActive(pharmacy, Kind.PHARMACY)
    assert registry.totalActiveWeight() == TOTAL
    assert registry.proposal(tx_pid)["action"] == GovernanceAction.REINSTATE


def test_rating_change_moves_weight(registry, regulator, distributor, big_voters):
    change(registry, regulator, distributor, GovernanceAction.CHANGE_RATING, 75, big_voters)
    assert registry.memberOf(distributor)["rating"] == 75
    assert registry.weightOf(distributor) == 75
    assert registry.totalActiveWeight() == TOTAL - RATINGS["distributor"] + 75


def test_rating_change_of_suspended_member_keeps_total(registry, regulator, distributor, big_voters):
    change(registry, regulator, distributor, GovernanceAction.SUSPEND, 0, big_voters)
    before = registry.totalActiveWeight()
    change(registry, regulator, distributor, GovernanceAction.CHANGE_RATING, 10, big_voters)
    assert registry.totalActiveWeight() == before
    change(registry, regulator, distributor, GovernanceAction.REINSTATE, 0, big_voters)
    assert registry.totalActiveWeight() == before + 10


def test_removal_is_final(registry, regulator, pharmacy, big_voters):
    change(registry, regulator, pharmacy, GovernanceAction.REMOVE, 0, big_voters)
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.REVOKED
    with reverts("RegistryAlreadyMember", pharmacy):
        registry.proposeAdmission(pharmacy, Kind.PHARMACY, 50, licence("p"), {"from": regulator})
    with reverts("RegistryInvalidTransition", pharmacy, MemberStatus.REVOKED, GovernanceAction.REINSTATE):
        registry.proposeChange(pharmacy, GovernanceAction.REINSTATE, 0, {"from": regulator})


def test_status_change_events(registry, regulator, pharmacy, big_voters, hospital):
    pid = opened_id(registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    tx = None
    for voter in big_voters:
        tx = registry.vote(pid, True, {"from": voter})
        if "ProposalExecuted" in tx.events:
            break
    event = tx.events["MemberStatusChanged"]
    assert (event["account"], event["previous"], event["current"], event["proposalId"]) == (
        pharmacy,
        MemberStatus.ACTIVE,
        MemberStatus.SUSPENDED,
        pid,
    )


@pytest.mark.parametrize(
    ("action", "setup"),
    [(GovernanceAction.SUSPEND, GovernanceAction.SUSPEND), (GovernanceAction.REINSTATE, None)],
)
def test_invalid_transitions_revert(registry, regulator, pharmacy, big_voters, action, setup):
    if setup is not None:
        change(registry, regulator, pharmacy, setup, 0, big_voters)
    status = registry.memberOf(pharmacy)["status"]
    with reverts("RegistryInvalidTransition", pharmacy, status, action):
        registry.proposeChange(pharmacy, action, 0, {"from": regulator})


def test_change_of_non_member_reverts(registry, regulator, outsider):
    with reverts("RegistryNotMember", outsider):
        registry.proposeChange(outsider, GovernanceAction.SUSPEND, 0, {"from": regulator})


def test_change_by_outsider_reverts(registry, outsider, pharmacy):
    with reverts("RegistryNotActiveMember", outsider):
        registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": outsider})


def test_unchanged_rating_reverts(registry, regulator, pharmacy):
    with reverts("RegistryRatingUnchanged", pharmacy, RATINGS["pharmacy"]):
        registry.proposeChange(
            pharmacy, GovernanceAction.CHANGE_RATING, RATINGS["pharmacy"], {"from": regulator}
        )


@pytest.mark.parametrize(
    ("action", "rating"),
    [
        (GovernanceAction.CHANGE_RATING, 0),
        (GovernanceAction.CHANGE_RATING, 101),
        (GovernanceAction.SUSPEND, 5),
    ],
)
def test_bad_rating_in_change_reverts(registry, regulator, pharmacy, action, rating):
    with reverts("RegistryInvalidRating", rating):
        registry.proposeChange(pharmacy, action, rating, {"from": regulator})


def test_change_proposal_blocks_second_for_same_member_and_action(registry, regulator, hospital, pharmacy):
    # One open proposal per (subject, action): a second suspension waits for the first.
    pid = opened_id(registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    with reverts("RegistrySubjectHasOpenProposal", pharmacy, GovernanceAction.SUSPEND, pid):
        registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": hospital})
    assert registry.openProposalOf(pharmacy, GovernanceAction.SUSPEND) == pid
    assert registry.openProposalOf(pharmacy, GovernanceAction.REMOVE) == 0


# ─── No shielding: self-proposals, one lock per (subject, action), fitness at execution ────


@pytest.mark.parametrize(
    ("action", "rating"),
    [(GovernanceAction.CHANGE_RATING, 99), (GovernanceAction.SUSPEND, 0), (GovernanceAction.REMOVE, 0)],
)
def test_member_cannot_propose_about_itself(registry, pharmacy, action, rating):
    with reverts("RegistrySelfProposal", pharmacy, action):
        registry.proposeChange(pharmacy, action, rating, {"from": pharmacy})
    assert registry.proposalCount() == 0


def test_open_rating_proposal_does_not_shield_from_suspension(
    registry, regulator, hospital2, pharmacy, big_voters
):
    # A friend opens a harmless rating change about the member about to be suspended...
    shield = opened_id(
        registry.proposeChange(pharmacy, GovernanceAction.CHANGE_RATING, 55, {"from": hospital2})
    )
    # ...and the suspension can still be opened and passed.
    pid = opened_id(registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": regulator}))
    pass_with(registry, pid, big_voters)
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.SUSPENDED
    assert registry.proposal(shield)["status"] == ProposalStatus.OPEN


def test_open_reinstatement_does_not_shield_from_removal(
    registry, regulator, hospital2, pharmacy, big_voters
):
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    opened_id(registry.proposeChange(pharmacy, GovernanceAction.REINSTATE, 0, {"from": hospital2}))
    change(registry, regulator, pharmacy, GovernanceAction.REMOVE, 0, big_voters)
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.REVOKED


def superseding_vote(registry, proposal_id, voters):
    """Votes yes until the proposal closes; returns the closing transaction."""
    for voter in voters:
        if registry.proposal(proposal_id)["status"] != ProposalStatus.OPEN:
            break
        if registry.hasVoted(proposal_id, voter):
            continue
        tx = registry.vote(proposal_id, True, {"from": voter})
    return tx


def test_reinstatement_after_removal_is_superseded(registry, regulator, hospital2, pharmacy, big_voters):
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    reinstate = opened_id(
        registry.proposeChange(pharmacy, GovernanceAction.REINSTATE, 0, {"from": hospital2})
    )
    change(registry, regulator, pharmacy, GovernanceAction.REMOVE, 0, big_voters)
    total = registry.totalActiveWeight()
    tx = superseding_vote(registry, reinstate, [regulator, *big_voters])
    assert tx.events["ProposalSuperseded"]["proposalId"] == reinstate
    assert tx.events["ProposalSuperseded"]["subjectStatus"] == MemberStatus.REVOKED
    assert "ProposalExecuted" not in tx.events
    assert "MemberStatusChanged" not in tx.events
    assert registry.proposal(reinstate)["status"] == ProposalStatus.SUPERSEDED
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.REVOKED  # removal stays final
    assert registry.totalActiveWeight() == total
    assert registry.openProposalOf(pharmacy, GovernanceAction.REINSTATE) == 0


def test_rating_change_after_removal_is_superseded(registry, regulator, hospital2, distributor, big_voters):
    rating = opened_id(
        registry.proposeChange(distributor, GovernanceAction.CHANGE_RATING, 90, {"from": hospital2})
    )
    change(registry, regulator, distributor, GovernanceAction.REMOVE, 0, big_voters)
    tx = superseding_vote(registry, rating, [regulator, *big_voters])
    assert tx.events["ProposalSuperseded"]["subjectStatus"] == MemberStatus.REVOKED
    assert registry.memberOf(distributor)["rating"] == RATINGS["distributor"]


def test_suspension_after_removal_is_superseded(registry, regulator, hospital2, pharmacy, big_voters):
    suspend = opened_id(registry.proposeChange(pharmacy, GovernanceAction.SUSPEND, 0, {"from": hospital2}))
    change(registry, regulator, pharmacy, GovernanceAction.REMOVE, 0, big_voters)
    superseding_vote(registry, suspend, [regulator, *big_voters])
    assert registry.proposal(suspend)["status"] == ProposalStatus.SUPERSEDED
    assert registry.memberOf(pharmacy)["status"] == MemberStatus.REVOKED


def test_concurrent_suspension_and_rating_change_both_apply(
    registry, regulator, hospital2, distributor, big_voters
):
    rating = opened_id(
        registry.proposeChange(distributor, GovernanceAction.CHANGE_RATING, 10, {"from": hospital2})
    )
    change(registry, regulator, distributor, GovernanceAction.SUSPEND, 0, big_voters)
    superseding_vote(registry, rating, [regulator, *big_voters])
    assert registry.proposal(rating)["status"] == ProposalStatus.EXECUTED
    assert registry.memberOf(distributor)["rating"] == 10
    assert registry.totalActiveWeight() == TOTAL - RATINGS["distributor"]
    change(registry, regulator, distributor, GovernanceAction.REINSTATE, 0, big_voters)
    assert registry.totalActiveWeight() == TOTAL - RATINGS["distributor"] + 10


# ─── Vote weight is the weight at the proposal's opening ───────────────────────────────────


def test_rating_increase_after_opening_does_not_raise_vote_weight(
    registry, regulator, applicant, distributor, big_voters
):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    change(registry, regulator, distributor, GovernanceAction.CHANGE_RATING, 75, big_voters)
    assert registry.weightOf(distributor) == 75
    assert registry.votingWeight(pid, distributor) == RATINGS["distributor"]
    tx = registry.vote(pid, True, {"from": distributor})
    assert tx.events["VoteCast"]["weight"] == RATINGS["distributor"]
    assert registry.proposal(pid)["yesWeight"] == FOUNDER_RATING + RATINGS["distributor"]


def test_rating_decrease_after_opening_does_not_lower_vote_weight(
    registry, regulator, applicant, hospital, hospital2, insurer, laboratory, manufacturer
):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    change(
        registry,
        regulator,
        hospital,
        GovernanceAction.CHANGE_RATING,
        10,
        [hospital2, insurer, laboratory, manufacturer],
    )
    assert registry.weightOf(hospital) == 10
    tx = registry.vote(pid, False, {"from": hospital})
    assert tx.events["VoteCast"]["weight"] == RATINGS["hospital"]
    assert registry.proposal(pid)["noWeight"] == RATINGS["hospital"]


def test_rating_change_executed_before_opening_counts(
    registry, regulator, applicant, distributor, big_voters
):
    change(registry, regulator, distributor, GovernanceAction.CHANGE_RATING, 75, big_voters)
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    assert registry.proposal(pid)["totalWeight"] == TOTAL - RATINGS["distributor"] + 75
    assert registry.vote(pid, True, {"from": distributor}).events["VoteCast"]["weight"] == 75


def test_change_opened_earlier_but_executed_after_opening_does_not_count(
    registry, regulator, applicant, distributor, big_voters
):
    # The rating change opens first, the admission second, then the rating change executes:
    # the admission's weights are those of its own opening.
    earlier = opened_id(
        registry.proposeChange(distributor, GovernanceAction.CHANGE_RATING, 75, {"from": regulator})
    )
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    pass_with(registry, earlier, big_voters)
    assert registry.vote(pid, True, {"from": distributor}).events["VoteCast"]["weight"] == 40


def test_member_suspended_after_opening_cannot_vote(registry, regulator, applicant, pharmacy, big_voters):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    assert registry.votingWeight(pid, pharmacy) == RATINGS["pharmacy"]  # it had weight then...
    with reverts("RegistryNotActiveMember", pharmacy):  # ...but must be active now
        registry.vote(pid, True, {"from": pharmacy})


def test_member_suspended_and_reinstated_after_opening_votes_with_weight_at_opening(
    registry, regulator, applicant, distributor, big_voters
):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    change(registry, regulator, distributor, GovernanceAction.SUSPEND, 0, big_voters)
    change(registry, regulator, distributor, GovernanceAction.CHANGE_RATING, 99, big_voters)
    change(registry, regulator, distributor, GovernanceAction.REINSTATE, 0, big_voters)
    assert registry.vote(pid, True, {"from": distributor}).events["VoteCast"]["weight"] == 40


def test_member_suspended_at_opening_cannot_vote_after_reinstatement(
    registry, regulator, applicant, pharmacy, big_voters
):
    change(registry, regulator, pharmacy, GovernanceAction.SUSPEND, 0, big_voters)
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    assert registry.proposal(pid)["totalWeight"] == TOTAL - RATINGS["pharmacy"]
    change(registry, regulator, pharmacy, GovernanceAction.REINSTATE, 0, big_voters)
    assert registry.votingWeight(pid, pharmacy) == 0
    with reverts("RegistryNotEligibleVoter", pid, pharmacy):
        registry.vote(pid, True, {"from": pharmacy})


def test_voting_weight_of_unknown_proposal_reverts(registry, hospital):
    with reverts("RegistryUnknownProposal", 5):
        registry.votingWeight(5, hospital)


# ─── Views ─────────────────────────────────────────────────────────────────────────────────


def test_is_active_any_matches_mask(registry, hospital2, outsider):
    care = kind_mask(Kind.HOSPITAL, Kind.SPECIALIST_HOSPITAL, Kind.COMMUNITY_CLINIC)
    assert registry.isActiveAny(hospital2, care)
    assert not registry.isActiveAny(hospital2, kind_mask(Kind.PHARMACY))
    assert not registry.isActiveAny(outsider, care | kind_mask(Kind.NONE))


def test_is_active_is_false_for_kind_none(registry, outsider):
    assert not registry.isActive(outsider, Kind.NONE)


def test_has_voted_tracks_votes(registry, open_admission, regulator, hospital):
    assert registry.hasVoted(open_admission, regulator)
    assert not registry.hasVoted(open_admission, hospital)


def test_sdk_reads_voting_weight_and_open_proposals(suite, registry, regulator, applicant, distributor):
    pid = opened_id(
        registry.proposeAdmission(applicant, Kind.HOSPITAL, 50, licence("a"), {"from": regulator})
    )
    client = suite.registry
    assert client.voting_weight(pid, distributor.address) == RATINGS["distributor"]
    assert client.voting_weight(pid, applicant.address) == 0
    assert client.open_proposal(applicant.address, GovernanceAction.ADMIT) == pid
    assert client.open_proposal(applicant.address, GovernanceAction.SUSPEND) is None
