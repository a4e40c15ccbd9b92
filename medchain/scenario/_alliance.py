"""Who takes part: the regional alliance's institutions, the patients' keys, and the governance that
admits the institutions (founders at bootstrap, the rest by credit-weighted vote)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from medchain.deploy import FoundingMember
from medchain.registry import RegistryClient
from medchain.scenario._chain import ScenarioError, SimChain
from medchain.types import Kind, MemberStatus


def derive_key(seed: int, role: str) -> LocalAccount:
    """A deterministic local key for ``role`` in the scenario of ``seed`` (local chains only: anyone
    who knows the seed knows the key)."""
    material = b"medchain-scenario/1" + seed.to_bytes(8, "big", signed=False) + role.encode()
    account: LocalAccount = Account.from_key(Web3.keccak(material))
    return account


def licence_of(name: str) -> bytes:
    """A stand-in licence digest: SHA-256 of a licence document naming the institution."""
    return hashlib.sha256(f"licence of {name}".encode()).digest()


@dataclass(frozen=True)
class Institution:
    """A consortium member of the scenario: its name (off chain only), kind, rating and key."""

    name: str
    kind: Kind
    rating: int
    account: LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass(frozen=True)
class Alliance:
    """The regional alliance: the care providers the paper's Changzhou alliance counts (tertiary
    hospitals, community clinics, specialist hospitals) and the members around them."""

    regulator: Institution
    hospitals: tuple[Institution, ...]
    clinics: tuple[Institution, ...]
    specialists: tuple[Institution, ...]
    laboratory: Institution
    manufacturers: tuple[Institution, ...]
    distributors: tuple[Institution, ...]
    pharmacies: tuple[Institution, ...]
    insurers: tuple[Institution, ...]

    @property
    def founders(self) -> tuple[Institution, ...]:
        """Admitted at bootstrap by the founding regulator: the tertiary hospitals."""
        return self.hospitals

    @property
    def first_wave(self) -> tuple[Institution, ...]:
        """Admitted by the founders' votes."""
        return (*self.specialists, self.laboratory, *self.insurers)

    @property
    def second_wave(self) -> tuple[Institution, ...]:
        """Admitted by the votes of everyone the first wave left active."""
        return (*self.clinics, *self.manufacturers, *self.distributors, *self.pharmacies)

    @property
    def members(self) -> tuple[Institution, ...]:
        return (self.regulator, *self.founders, *self.first_wave, *self.second_wave)

    @property
    def providers(self) -> tuple[Institution, ...]:
        """The care providers (the alliance's 23 institutions at the default size)."""
        return (*self.hospitals, *self.clinics, *self.specialists)

    def name_of(self, address: str) -> str:
        return next((m.name for m in self.members if m.address == address), address)


SPECIALTIES = (
    "Cardiology",
    "Oncology",
    "Orthopaedics",
    "Paediatrics",
    "Obstetrics",
    "Neurology",
    "Ophthalmology",
    "Stomatology",
    "Psychiatry",
    "Dermatology",
)


def build_alliance(seed: int, hospitals: int, clinics: int, specialists: int) -> Alliance:
    """The institutions, their ratings (credit grades that vary a little within a kind) and keys."""

    def member(role: str, name: str, kind: Kind, rating: int) -> Institution:
        return Institution(name, kind, rating, derive_key(seed, role))

    def graded(top: int, index: int) -> int:
        return max(1, top - 2 * (index % 4))

    return Alliance(
        regulator=member("regulator", "Regional Health Commission", Kind.REGULATOR, 95),
        hospitals=tuple(
            member(f"hospital-{i}", f"Tertiary Hospital {i + 1}", Kind.HOSPITAL, graded(90, i))
            for i in range(hospitals)
        ),
        clinics=tuple(
            member(f"clinic-{i}", f"Community Clinic {i + 1:02d}", Kind.COMMUNITY_CLINIC, graded(62, i))
            for i in range(clinics)
        ),
        specialists=tuple(
            member(
                f"specialist-{i}",
                f"{SPECIALTIES[i % len(SPECIALTIES)]} Hospital"
                + (f" {i // len(SPECIALTIES) + 1}" if i >= len(SPECIALTIES) else ""),
                Kind.SPECIALIST_HOSPITAL,
                graded(80, i),
            )
            for i in range(specialists)
        ),
        laboratory=member("laboratory-0", "Regional Clinical Laboratory", Kind.LABORATORY, 72),
        manufacturers=tuple(
            member(f"manufacturer-{i}", name, Kind.MANUFACTURER, 70 - 2 * i)
            for i, name in enumerate(("Huaxin Pharmaceutical", "Kanghe Biotech"))
        ),
        distributors=tuple(
            member(f"distributor-{i}", name, Kind.DISTRIBUTOR, 56 - 2 * i)
            for i, name in enumerate(("Jiangnan Medical Logistics", "Taihu Pharma Distribution"))
        ),
        pharmacies=tuple(
            member(f"pharmacy-{i}", f"Pharmacy {i + 1}", Kind.PHARMACY, 50 - i) for i in range(3)
        ),
        insurers=tuple(
            member(f"insurer-{i}", name, Kind.INSURER, 76 - 2 * i)
            for i, name in enumerate(("Basic Medical Insurance Fund", "Mutual Health Insurance"))
        ),
    )


def founding_members(alliance: Alliance) -> tuple[FoundingMember, ...]:
    return tuple(FoundingMember(m.address, m.kind, m.rating, licence_of(m.name)) for m in alliance.founders)


@dataclass
class Governance:
    """What admitting the alliance took: proposals executed and votes cast."""

    proposals: int = 0
    votes: int = 0


def admit_by_vote(
    chain: SimChain,
    registry: RegistryClient,
    quorum_bps: int,
    proposer: Institution,
    applicants: tuple[Institution, ...],
    keys: Mapping[str, LocalAccount],
    tally: Governance,
    advance: Callable[[int], None],
) -> None:
    """Opens an admission proposal for each applicant (one block), then has the active members vote
    yes, heaviest first, until each proposal reaches its quorum (the next block). Weights and the
    quorum base are read from the chain, so the vote count follows the registry's own rule.

    Raises:
        ScenarioError: a proposal did not execute.
    """
    if not applicants:
        return
    opened: dict[str, int] = {}

    def record_opened(applicant: Institution) -> Callable[[TxReceipt], None]:
        def then(receipt: TxReceipt) -> None:
            events = registry.contract.events.ProposalOpened().process_receipt(receipt, errors=DISCARD)
            opened[applicant.address] = int(events[0]["args"]["proposalId"])

        return then

    for applicant in applicants:
        chain.queue(
            f"propose admission of {applicant.name}",
            proposer.account,
            registry.contract,
            "proposeAdmission",
            applicant.address,
            int(applicant.kind),
            applicant.rating,
            licence_of(applicant.name),
            then=record_opened(applicant),
        )
    chain.flush()
    tally.proposals += len(applicants)
    members = [m for m in registry.members() if m.status == MemberStatus.ACTIVE]
    for applicant in applicants:
        proposal = registry.proposal(opened[applicant.address])
        yes = proposal.yes_weight
        voters = sorted(
            (m for m in members if m.address != proposer.address), key=lambda m: (-m.weight, m.address)
        )
        for voter in voters:
            if yes * 10_000 >= quorum_bps * proposal.total_weight:
                break
            chain.queue(
                f"vote to admit {applicant.name}",
                keys[voter.address],
                registry.contract,
                "vote",
                proposal.id,
                True,
            )
            yes += voter.weight
            tally.votes += 1
    chain.flush()
    for applicant in applicants:
        if registry.member(applicant.address).status != MemberStatus.ACTIVE:
            raise ScenarioError(f"{applicant.name} was not admitted (proposal {opened[applicant.address]})")
        advance(1)
