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

pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.deployments",
    "tests.fixtures.gateway",
    "tests.fixtures.claims",
    "tests.fixtures.report",
]


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Every test starts from the module's deployment snapshot."""


@pytest.fixture(scope="session", autouse=True)
def patient_transaction_lookup():
    """Works around a race between brownie and Anvil that fails random tests under CPU load.

    brownie's receipt thread waits until the sender's transaction count passes the nonce, then
    looks the transaction up by hash; if that lookup says "not found" it declares the transaction
    "dropped without known replacement". Anvil can answer the count before the mined transaction
    is indexed (seen here on a loaded machine, in unit and property tests alike), so a transaction
    that did mine is reported dropped. Asking again for a few seconds before giving up removes the
    false report; a transaction really missing is still reported, only later.
    """
    import time

    from brownie import web3
    from web3.exceptions import TransactionNotFound

    original = web3.eth.get_transaction

    def get_transaction(tx_hash, *args, **kwargs):
        deadline = time.monotonic() + 5
        while True:
            try:
                return original(tx_hash, *args, **kwargs)
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    web3.eth.get_transaction = get_transaction
    yield
    web3.eth.get_transaction = original
