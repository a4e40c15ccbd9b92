"""The scenario's chain: a local Anvil whose blocks the scenario mines itself, at simulated times.

Two paths send transactions, and both leave every refusal on chain as a failed transaction:

- :meth:`SimChain.queue` collects independent transactions (each sender's nonces kept here) and
  :meth:`SimChain.flush` sends them in one JSON-RPC batch, mines them into as few blocks as the gas
  limit allows, and checks every receipt. This is the bulk path (consents, reads, anchors, claims,
  votes). Measured on this 2-core machine with signed consents: 94 tx/s at one transaction per
  block, 160-260 tx/s at 5-100 per block, against 44 tx/s for the SDK's own path
  (``sign_grant`` + ``submit_signed_grant``, which reads the nonce and the clock and waits for
  each receipt).
- :meth:`SimChain.transact` is what the SDK's clients call (``Chain.transact``): it flushes the
  queue, sends one transaction and mines it in a block of its own, so that the SDK's methods that
  need a receipt at once (deploy, lab batches, dispenses, recalls, reviews) work unchanged.

Neither path estimates gas: a transaction the contract refuses is mined with status 0, and its
custom error is read back from the node (``debug_traceTransaction`` with the call tracer) and
raised as :class:`~medchain.errors.ContractRevert`, as the SDK would. A refusal therefore stays on
chain (sender, called function and arguments in the transaction, error name by replay), where a
chain-only report can count it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from medchain.artifacts import Artifacts, abi_type
from medchain.chain import Chain, Sender
from medchain.errors import ChainError, ConfigurationError, ContractRevert, MedChainError, TransactionFailed

GAS_LIMIT = 3_000_000
"""Gas limit of every call (never estimated: a refused call must be mined). The largest call of the
scenario uses well under a million; a block holds nine or more at this limit."""
MAX_BLOCKS_PER_FLUSH = 64
"""A flush that has not emptied the pool after this many blocks means something is stuck."""


class ScenarioError(MedChainError):
    """The scenario went wrong: a transaction failed that should not have, or a refusal was not the
    expected one. The message names the step and the chain's answer."""


@dataclass
class _Queued:
    label: str
    sender: str
    tx_hash: bytes
    raw: bytes
    expect: str | None
    then: Callable[[TxReceipt], None] | None
    refused: Callable[[ContractRevert], None] | None


class _RevertData(Exception):
    """Carries revert data to :meth:`Chain.decode_revert` (which reads it from ``.data``)."""

    def __init__(self, data: str) -> None:
        super().__init__("reverted")
        self.data = data


class SimChain(Chain):
    """A :class:`Chain` on a local Anvil with automine off: the scenario decides when blocks are
    mined and with which timestamp (never earlier than the simulated clock, always after the last
    block). Only local keys send (:class:`LocalAccount`); gas costs nothing on these chains.

    Call :meth:`start` before the first transaction and :meth:`stop` after the last (it switches
    automine back on, so a kept chain behaves as before).
    """

    def __init__(self, w3: Web3, artifacts: Artifacts | None = None) -> None:
        super().__init__(w3, artifacts)
        if not isinstance(w3.provider, HTTPProvider):
            raise ConfigurationError(
                "the scenario talks to its node over HTTP (it batches JSON-RPC requests)"
            )
        self._provider: HTTPProvider = w3.provider
        self._chain_id = int(w3.eth.chain_id)
        self._read_head()
        self.sent = 0
        self.failed = 0
        self.blocks = 0
        self._nonces: dict[str, int] = {}
        self._queue: list[_Queued] = []
        self._times: dict[int, int] = {}
        self._domains: dict[str, Any] = {}
        self._mining = (True, 0)
        self._encoders: dict[tuple[str, str], tuple[bytes, list[str]]] = {}

    @property
    def chain_id(self) -> int:
        return self._chain_id

    # ─── Node control ───────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        """Switches automine and interval mining off: from now on only this object mines."""
        self._mining = (
            bool(self._rpc("anvil_getAutomine", [])),
            int(self._rpc("anvil_getIntervalMining", []) or 0),  # null: no interval mining
        )
        self._rpc("evm_setAutomine", [False])
        self._rpc("evm_setIntervalMining", [0])
        self._read_head()  # the node may have mined until now

    def _read_head(self) -> None:
        latest = self.w3.eth.get_block("latest")
        self.head = int(latest["number"])
        self.last_timestamp = int(latest["timestamp"])
        self.clock = self.last_timestamp
        """The simulated time: no block is mined with an earlier timestamp."""

    def stop(self) -> None:
        """Mines what is still queued and gives the node its own mining back."""
        try:
            self.flush()
        finally:
            self._restore_mining()

    def abandon(self) -> None:
        """After a failure: drops the queue and gives the node its mining back, raising nothing
        (the failure being reported matters more)."""
        self._queue.clear()
        with contextlib.suppress(Exception):
            self._restore_mining()

    def _restore_mining(self) -> None:
        automine, interval = self._mining
        self._rpc("evm_setIntervalMining", [interval])
        self._rpc("evm_setAutomine", [automine])

    def fund(self, addresses: Sequence[str], wei: int) -> None:
        """Sets the ether balance of each address (``anvil_setBalance``), in one batch."""
        requests = [(RPCEndpoint("anvil_setBalance"), [a, hex(wei)]) for a in addresses]
        for start in range(0, len(requests), 500):
            self._batch(requests[start : start + 500], "anvil_setBalance")

    def time_of(self, block: int) -> int:
        """The timestamp of a block this object mined."""
        return self._times[block]

    def first_block_from(self, timestamp: int) -> int:
        """The first block this object mined at or after ``timestamp`` (the next one if none yet)."""
        return min((n for n, t in self._times.items() if t >= timestamp), default=self.head + 1)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in answer:
            message = answer["error"].get("message", answer["error"])
            raise ChainError(f"the node refused {method}: {message}")
        return answer.get("result")

    def _batch(self, requests: list[tuple[RPCEndpoint, Any]], what: str) -> list[Any]:
        answers = self._provider.make_batch_request(requests)
        if not isinstance(answers, list):  # the whole batch was refused
            raise ChainError(f"the node refused a batch of {what}: {answers.get('error')}")
        results = []
        for answer in answers:
            if "error" in answer:
                raise ChainError(f"the node refused {what}: {answer['error'].get('message')}")
            results.append(answer.get("result"))
        return results

    # ─── Sending ────────────────────────────────────────────────────────────────────────────

    def queue(
        self,
        label: str,
        sender: LocalAccount,
        contract: Contract,
        function: str,
        *args: Any,
        expect: str | None = None,
        then: Callable[[TxReceipt], None] | None = None,
        refused: Callable[[ContractRevert], None] | None = None,
    ) -> None:
        """Signs ``function(*args)`` on ``contract`` from ``sender``; it is sent at the next flush.

        Args:
            label: Names the step in error messages.
            expect: The custom error the contract must refuse it with (a fraud attempt); the flush
                raises :class:`ScenarioError` if it is accepted or refused otherwise.
            then: Called with the receipt once it is mined (not for an expected refusal).
            refused: Called with the refusal when ``expect`` matched.
        """
        data = self._calldata(contract, function, args)
        nonce = self._take_nonce(sender.address)
        tx: dict[str, Any] = {
            "to": contract.address,
            "data": data,
            "nonce": nonce,
            "gas": GAS_LIMIT,
            "gasPrice": 0,
            "chainId": self._chain_id,
            "value": 0,
        }
        signed = sender.sign_transaction(tx)
        self._queue.append(
            _Queued(
                label,
                sender.address,
                bytes(signed.hash),
                bytes(signed.raw_transaction),
                expect,
                then,
                refused,
            )
        )

    def flush(self) -> list[TxReceipt]:
        """Sends the queued transactions, mines them and checks each receipt; returns the receipts.

        Raises:
            ScenarioError: a transaction was refused that should have passed, or a fraud attempt
                was accepted or refused with another error than expected.
        """
        if not self._queue:
            return []
        queued, self._queue = self._queue, []
        requests = [(RPCEndpoint("eth_sendRawTransaction"), ["0x" + q.raw.hex()]) for q in queued]
        answers = self._provider.make_batch_request(requests)
        if not isinstance(answers, list):
            raise ChainError(
                f"the node refused a batch of {len(queued)} transactions: {answers.get('error')}"
            )
        for q, answer in zip(queued, answers, strict=True):
            if "error" in answer:
                self._nonces.clear()  # re-read every nonce: the node did not take this one
                raise ScenarioError(
                    f"{q.label}: the node refused the transaction: {answer['error'].get('message')}"
                )
        self.sent += len(queued)
        receipts = self._mine_all({q.tx_hash for q in queued})
        out: list[TxReceipt] = []
        callbacks: list[Callable[[], None]] = []
        for q in queued:
            receipt = receipts[q.tx_hash]
            out.append(receipt)
            if receipt["status"] == 1:
                if q.expect is not None:
                    raise ScenarioError(
                        f"{q.label}: expected the contract to refuse it ({q.expect}), but it passed"
                    )
                if q.then is not None:
                    callbacks.append(_bind(q.then, receipt))
                continue
            self.failed += 1
            refusal = self.refusal(q.tx_hash)
            if q.expect is None:
                raise ScenarioError(f"{q.label}: {refusal}")
            if not isinstance(refusal, ContractRevert) or refusal.error != q.expect:
                raise ScenarioError(f"{q.label}: expected {q.expect}, got {refusal}")
            if q.refused is not None:
                callbacks.append(_bind(q.refused, refusal))
        for callback in callbacks:
            callback()
        return out

    def transact(
        self, fn: ContractFunction | ContractConstructor, sender: Sender, value: int = 0
    ) -> TxReceipt:
        """The SDK's send path here: one transaction, mined in a block of its own.

        Raises:
            ContractRevert: the contract refused it (the failed transaction stays on chain).
            TransactionFailed: it failed without a custom error.
        """
        self.flush()
        account = _local(sender)
        params: TxParams = {
            "from": account.address,
            "nonce": Nonce(self._take_nonce(account.address)),
            "gasPrice": Wei(0),
            "chainId": self._chain_id,
            "value": Wei(value),
        }
        if isinstance(fn, ContractConstructor):
            # A constructor may need more than a call; nothing is pending, so estimate it.
            params["gas"] = int(fn.estimate_gas({"from": account.address}) * 5 // 4)
        else:
            params["gas"] = GAS_LIMIT
        try:
            tx = fn.build_transaction(params)
            tx_hash = bytes(self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))  # type: ignore[arg-type]
        except Exception as exc:
            self._nonces.pop(account.address, None)
            raise TransactionFailed(f"the node refused the transaction: {exc}") from None
        self.sent += 1
        receipt = self._mine_all({tx_hash})[tx_hash]
        if receipt["status"] != 1:
            self.failed += 1
            raise self.refusal(tx_hash)
        return receipt

    def refusal(self, tx_hash: bytes) -> ContractRevert | TransactionFailed:
        """Why a mined transaction failed: its custom error, replayed by the node."""
        trace = self._rpc("debug_traceTransaction", ["0x" + tx_hash.hex(), {"tracer": "callTracer"}])
        output = trace.get("output") if isinstance(trace, dict) else None
        if isinstance(output, str) and len(output) >= 10:
            return self.decode_revert(_RevertData(output))
        error = trace.get("error") if isinstance(trace, dict) else None
        return TransactionFailed(f"transaction 0x{tx_hash.hex()} failed on chain ({error or 'no reason'})")

    def call(self, fn: ContractFunction) -> Any:
        """As :meth:`Chain.call`; a contract's EIP-712 domain is read once (it cannot change)."""
        if fn.fn_name != "eip712Domain":
            return super().call(fn)
        address = str(fn.address)
        if address not in self._domains:
            self._domains[address] = super().call(fn)
        return self._domains[address]

    # ─── Internals ──────────────────────────────────────────────────────────────────────────

    def _take_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = int(
                self.w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending")
            )
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    def _calldata(self, contract: Contract, function: str, args: tuple[Any, ...]) -> bytes:
        """Selector and ABI-encoded arguments (eth_abi directly: ten times faster than through
        web3's contract function, which matters at thousands of transactions)."""
        key = (str(contract.address), function)
        encoder = self._encoders.get(key)
        if encoder is None:
            entries = [e for e in contract.abi if e.get("type") == "function" and e.get("name") == function]
            if len(entries) != 1:
                raise ScenarioError(f"{function} is not one function of the contract at {contract.address}")
            entry: dict[str, Any] = dict(entries[0])
            inputs: list[dict[str, Any]] = list(entry.get("inputs", []))
            types = [abi_type(i) for i in inputs]
            selector = bytes(Web3.keccak(text=f"{function}({','.join(types)})")[:4])
            encoder = (selector, types)
            self._encoders[key] = encoder
        selector, types = encoder
        return selector + abi_encode(types, list(args))

    def _next_timestamp(self) -> int:
        return max(self.clock, self.last_timestamp + 1)

    def _mine_all(self, wanted: set[bytes]) -> dict[bytes, TxReceipt]:
        """Mines blocks until every transaction of ``wanted`` has a receipt; returns them by hash.

        One block holds what fits under the block gas limit (counted at each transaction's limit),
        so a large batch takes a few blocks; an empty block while some are missing means the node
        dropped them.
        """
        found: dict[bytes, TxReceipt] = {}
        for _ in range(MAX_BLOCKS_PER_FLUSH):
            timestamp = self._next_timestamp()
            self._rpc("evm_mine", [timestamp])
            self.head += 1
            self.blocks += 1
            self.last_timestamp = timestamp
            self._times[self.head] = timestamp
            receipts: list[TxReceipt] = list(self.w3.eth.get_block_receipts(self.head))
            for receipt in receipts:
                found[bytes(HexBytes(receipt["transactionHash"]))] = receipt
            missing = wanted - set(found)
            if not missing:
                return found
            if not receipts:
                raise ScenarioError(
                    f"{len(missing)} transaction(s) were not mined (first 0x{next(iter(missing)).hex()}); "
                    "did something else mine or reset the chain?"
                )
        raise ScenarioError(f"transactions still unmined after {MAX_BLOCKS_PER_FLUSH} blocks")


def _bind(fn: Callable[[Any], None], value: Any) -> Callable[[], None]:
    return lambda: fn(value)


def _local(sender: Sender) -> LocalAccount:
    if not isinstance(sender, LocalAccount):
        raise ConfigurationError("the scenario sends from local keys only, not node-unlocked accounts")
    return sender
