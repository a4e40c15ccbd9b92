"""Merkle trees as OpenZeppelin's MerkleProof verifies them (sorted-pair keccak256).

Leaves are ``keccak256(bytes.concat(recordId))`` (double hashing, as EHRIndex computes them).
"""

from __future__ import annotations

from web3 import Web3


def leaf(record_id: bytes) -> bytes:
    return bytes(Web3.keccak(record_id))


def _pair(a: bytes, b: bytes) -> bytes:
    return bytes(Web3.keccak(a + b if a < b else b + a))


class MerkleTree:
    """A tree over record ids; gives the root and per-record proofs."""

    def __init__(self, record_ids: list[bytes]) -> None:
        if not record_ids:
            raise ValueError("a Merkle batch needs at least one record")
        self.leaves = [leaf(r) for r in record_ids]
        self.index = {r: i for i, r in enumerate(record_ids)}
        self.levels: list[list[bytes]] = [self.leaves]
        while len(self.levels[-1]) > 1:
            level = self.levels[-1]
            nxt = [
                _pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                for i in range(0, len(level), 2)
            ]
            self.levels.append(nxt)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, record_id: bytes) -> list[bytes]:
        try:
            i = self.index[record_id]
        except KeyError:
            raise ValueError("that record is not in this batch") from None
        path: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i //= 2
        return path


def verify(proof: list[bytes], root: bytes, record_id: bytes) -> bool:
    node = leaf(record_id)
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root
