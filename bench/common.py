"""What every benchmark starts from: a fresh suite on a throw-away local chain."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from web3 import Web3

from medchain.artifacts import Artifacts
from medchain.chain import Chain
from medchain.deploy import FoundingMember, SuiteConfig, deploy_suite
from medchain.suite import Suite
from medchain.types import Kind


def deploy_with(w3: Web3, *kinds: Kind) -> tuple[Chain, Suite, list[str], Path]:
    """Deploys the suite, admitting accounts[1..] as ``kinds``; returns chain, suite, accounts, manifest."""
    chain = Chain(w3, Artifacts())
    accounts = list(w3.eth.accounts)
    members = tuple(
        FoundingMember(accounts[i + 1], kind, 70, hashlib.sha256(accounts[i + 1].encode()).digest())
        for i, kind in enumerate(kinds)
    )
    manifest = Path(tempfile.mkdtemp()) / "bench-manifest.json"
    config = SuiteConfig(
        founder_licence=hashlib.sha256(b"bench regulator").digest(), founding_members=members
    )
    return chain, deploy_suite(chain, accounts[0], config, manifest), accounts, manifest
