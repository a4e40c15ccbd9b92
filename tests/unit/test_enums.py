"""Each Python enum that mirrors a Solidity enum has the same members, in the same order.

The members come from the compiled interface's AST (the ABI names only the enum type, e.g.
``enum IEHRIndex.RecordStatus`` as an ``internalType``; both are checked)."""

import json
import re
from enum import IntEnum
from pathlib import Path

import pytest

from medchain import types

BUILD = Path(__file__).resolve().parents[2] / "build" / "interfaces"

MIRRORS = [
    (types.Kind, "IInstitutionRegistry", "Kind"),
    (types.MemberStatus, "IInstitutionRegistry", "Status"),
    (types.GovernanceAction, "IInstitutionRegistry", "Action"),
    (types.ProposalStatus, "IInstitutionRegistry", "ProposalStatus"),
    (types.ScopeKind, "IConsentManager", "ScopeKind"),
    (types.GrantStatus, "IConsentManager", "GrantStatus"),
    (types.Review, "IConsentManager", "Review"),
    (types.RecordStatus, "IEHRIndex", "RecordStatus"),
    (types.BatchStatus, "IDrugProvenance", "BatchStatus"),
    (types.ShipmentStatus, "IDrugProvenance", "ShipmentStatus"),
    (types.ClaimStatus, "IClaimsProcessor", "ClaimStatus"),
]


def _interface(name: str) -> dict:
    return json.loads((BUILD / f"{name}.json").read_text())


def _solidity_enum(artifact: dict, enum: str) -> list[str]:
    found: list[list[str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("nodeType") == "EnumDefinition" and node.get("name") == enum:
                found.append([m["name"] for m in node["members"]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(artifact["ast"])
    assert len(found) == 1, f"{enum} defined {len(found)} times"
    return found[0]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@pytest.mark.parametrize(
    ("py_enum", "interface", "sol_enum"), MIRRORS, ids=lambda v: getattr(v, "__name__", v)
)
def test_python_enum_mirrors_the_interface_enum(py_enum: type[IntEnum], interface: str, sol_enum: str):
    artifact = _interface(interface)
    members = _solidity_enum(artifact, sol_enum)
    assert [(m.name, m.value) for m in py_enum] == [(_snake(n), i) for i, n in enumerate(members)]


@pytest.mark.parametrize(
    ("py_enum", "interface", "sol_enum"), MIRRORS, ids=lambda v: getattr(v, "__name__", v)
)
def test_the_abi_uses_the_mirrored_enum(py_enum: type[IntEnum], interface: str, sol_enum: str):
    """The enum is part of the interface's ABI (as an internalType), so the mirror matters to callers."""
    abi = json.dumps(_interface(interface)["abi"])
    assert f'"enum {interface}.{sol_enum}"' in abi


def test_consent_codes_match_the_contract_constants():
    """Actions and purposes are bit positions in ConsentManager; their count bounds the masks."""
    assert [int(a) for a in types.Actions] == [1, 2, 4]
    assert [p.name for p in types.Purpose] == ["TREAT", "HPAYMT", "HRESCH", "ETREAT"]
    assert types.Purpose.mask(*types.Purpose) == 0b1111
