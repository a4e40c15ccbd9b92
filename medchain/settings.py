"""Every environment variable medchain reads, with its default, in one place.

docs/configuration.md lists the same table (a test keeps the two equal). Values are read when
asked for, not at import, so a test or a long-running service sees the environment of the moment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default as shown to people, and what it does."""

    name: str
    default: str
    meaning: str

    def get(self) -> str | None:
        """The variable's value, or None when unset or empty."""
        value = os.environ.get(self.name, "").strip()
        return value or None


HOME = Setting(
    "MEDCHAIN_HOME",
    "~/.medchain",
    "The CLI's data directory: local chain state, deployment manifests, keystores, record store, key vault.",
)
RPC = Setting(
    "MEDCHAIN_RPC",
    "http://127.0.0.1:<$MEDCHAIN_CHAIN_PORT or 8545>",
    "JSON-RPC URL of the node every command talks to.",
)
MANIFEST = Setting(
    "MEDCHAIN_MANIFEST",
    "$MEDCHAIN_HOME/deployments/<chain id>.json",
    "The deployment manifest to use instead of the default location.",
)
ARTIFACTS = Setting(
    "MEDCHAIN_ARTIFACTS",
    "build/contracts of the source tree",
    "Folder of compiled contract artifacts (ABIs).",
)
PASSWORD = Setting(
    "MEDCHAIN_PASSWORD",
    "(prompt)",
    "Password of keystore files (account new/import and any --from NAME); asked for when unset.",
)
PRIVATE_KEY = Setting(
    "MEDCHAIN_PRIVATE_KEY",
    "(none)",
    "A raw private key to send with when no --from is given (automation; prefer keystores).",
)
GATEWAY = Setting(
    "MEDCHAIN_GATEWAY",
    "http://127.0.0.1:8610",
    "Custodian gateway URL for `ehr read`; its port is also `gateway serve`'s default port.",
)
CHAIN_PORT = Setting(
    "MEDCHAIN_CHAIN_PORT",
    "8545 for `chain up`; a free port for `make test`",
    "Port of the local chain: `medchain chain up` and the test suite's Anvil.",
)
DEBUG = Setting(
    "MEDCHAIN_DEBUG", "(unset)", "Set to 1 to see the Python traceback behind a one-line CLI error."
)
LICENCE = Setting(
    "MEDCHAIN_LICENCE",
    "a digest of a sample text",
    "Founder's licence digest for `brownie run scripts/deploy.py`.",
)
SETTLEMENT_TOKEN = Setting(
    "MEDCHAIN_SETTLEMENT_TOKEN",
    "(test token on local chains)",
    "Stablecoin address for `brownie run scripts/deploy.py` on real networks.",
)

CHROMIUM = Setting(
    "MEDCHAIN_CHROMIUM",
    "/usr/bin/chromium",
    "The Chromium `make test-browser` drives (headless) to check the KPI page.",
)
BROWSER_TEST = Setting(
    "MEDCHAIN_BROWSER_TEST",
    "(unset: skipped when Chromium is missing)",
    "`required` makes the browser test fail instead of skip without Chromium (`make test-browser` sets it).",
)

ALL: tuple[Setting, ...] = (
    HOME,
    RPC,
    MANIFEST,
    ARTIFACTS,
    PASSWORD,
    PRIVATE_KEY,
    GATEWAY,
    CHAIN_PORT,
    DEBUG,
    LICENCE,
    SETTLEMENT_TOKEN,
    CHROMIUM,
    BROWSER_TEST,
)

DEFAULT_CHAIN_PORT = 8545


def home() -> Path:
    """The data directory ($MEDCHAIN_HOME, else ~/.medchain)."""
    value = HOME.get()
    return Path(value).expanduser() if value else Path.home() / ".medchain"


def rpc_url() -> str:
    return RPC.get() or f"http://127.0.0.1:{chain_port()}"


def chain_port() -> int:
    value = CHAIN_PORT.get()
    return int(value) if value and value.isdigit() else DEFAULT_CHAIN_PORT
