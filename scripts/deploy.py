"""brownie entry point: deploy the suite with medchain's one deploy function.

    brownie run scripts/deploy.py --network <network>

The first brownie account becomes the founding regulator. On networks other than Anvil or
Ganache, set MEDCHAIN_SETTLEMENT_TOKEN to the stablecoin's address and MEDCHAIN_LICENCE to the
founder's licence digest.
"""

import hashlib
import os

from brownie import accounts, web3

from medchain.chain import Chain
from medchain.deploy import SuiteConfig, deploy_suite


def main():
    licence = os.environ.get("MEDCHAIN_LICENCE")
    digest = (
        bytes.fromhex(licence.removeprefix("0x"))
        if licence
        else hashlib.sha256(b"licence of the regulator").digest()
    )
    config = SuiteConfig(founder_licence=digest, settlement_token=os.environ.get("MEDCHAIN_SETTLEMENT_TOKEN"))
    suite = deploy_suite(Chain(web3), accounts[0].address, config)
    for name, record in suite.deployment.contracts.items():
        print(f"{name:<22} {record.address}")
