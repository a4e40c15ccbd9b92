"""brownie entry point for the end-to-end scenario (`make demo` runs the same code via `medchain demo`).

brownie run scripts/demo.py
"""

from brownie import web3

from medchain import demo
from medchain.chain import Chain


def main():
    demo.run(Chain(web3))
