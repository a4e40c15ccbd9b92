"""Test configuration: per-run chain port, isolation, and the shared fixtures."""

from __future__ import annotations

import os

import pytest
from brownie._config import CONFIG

# Each test run gets its own chain port (the Makefile picks a free one), so two runs on one
# machine never attach to each other's chain. brownie reads the port when it launches the chain,
# which happens after this module is imported.
_PORT = int(os.environ.get("MEDCHAIN_CHAIN_PORT", "8545"))
for _network in CONFIG.networks.values():
    if "cmd" in _network and isinstance(_network.get("cmd_settings"), dict):
        _network["cmd_settings"]["port"] = _PORT

pytest_plugins = ["tests.fixtures.accounts", "tests.fixtures.deployments", "tests.fixtures.gateway"]


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Every test starts from the module's deployment snapshot."""
