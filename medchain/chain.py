"""Connection to an EVM node and the one path every transaction of the SDK takes."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TimeExhausted, Web3Exception
from web3.logs import DISCARD
from web3.types import BlockIdentifier, EventData, RPCEndpoint, TxParams, TxReceipt, Wei

from medchain.artifacts import Artifacts, abi_type
from medchain.errors import ChainError, ContractRevert, TransactionFailed

Sender = ChecksumAddress | LocalAccount
"""Who sends a transaction: an account the node holds unlocked (local chains), or a local key."""

# Contracts whose custom errors the SDK can name when a call reverts.
ERROR_SOURCES = [
    "InstitutionRegistry",
    "ConsentManager",
    "EHRIndex",
    "DrugProvenance",
    "ClaimsProcessor",
    "SettlementToken",
]


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """Opens a JSON-RPC connection and checks that the node answers.

    Raises:
        ChainError: nothing answers at ``rpc_url``.
    """
    # web3 asks eth_chainId before and after every call to validate it; the chain id of one
    # endpoint does not change while a process runs, so that one answer is cached (nothing else).
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    w3 = Web3(provider)
    try:
        w3.eth.chain_id  # noqa: B018 - a cheap round trip proves the node is there
    except Exception as exc:
        raise ChainError(
            f"no Ethereum node answers at {rpc_url} ({type(exc).__name__}); is the chain running?"
        ) from None
    return w3


class Chain:
    """A web3 connection plus the artifacts needed to build contracts and name their errors."""

    def __init__(
        self,
        w3: Web3,
        artifacts: Artifacts | None = None,
        confirmations: int = 0,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.artifacts = artifacts or Artifacts()
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self._errors: dict[bytes, tuple[str, list[dict[str, Any]]]] | None = None

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def contract(self, name: str, address: str) -> Contract:
        """A web3 contract object for the deployed contract ``name`` at ``address``."""
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=self.artifacts.get(name).abi
        )

    def deploy(self, name: str, sender: Sender, *args: Any) -> tuple[Contract, TxReceipt]:
        """Deploys contract ``name`` with constructor ``args``; returns it and the receipt."""
        artifact = self.artifacts.get(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.transact(factory.constructor(*args), sender)
        address = receipt["contractAddress"]
        if address is None:
            raise TransactionFailed(f"deploying {name} produced no contract address")
        return self.contract(name, address), receipt

    def transact(
        self, fn: ContractFunction | ContractConstructor, sender: Sender, value: int = 0
    ) -> TxReceipt:
        """Sends one transaction and waits for its receipt.

        Raises:
            ContractRevert: the contract rejected it (decoded custom error).
            TransactionFailed: it could not be sent, was not mined in time, or failed on chain.
        """
        params: TxParams = {"value": Wei(value)} if value else {}
        try:
            if isinstance(sender, LocalAccount):
                params = {
                    **params,
                    "from": sender.address,
                    "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
                }
                tx = fn.build_transaction(params)
                signed = sender.sign_transaction(tx)  # type: ignore[arg-type]
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            else:
                tx_hash = fn.transact({**params, "from": sender})
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        except TimeExhausted as exc:
            raise TransactionFailed(
                f"transaction not mined within {self.receipt_timeout:.0f} s ({exc})"
            ) from None
        except (Web3Exception, ValueError) as exc:
            # Some providers (brownie's web3 among them) report a revert as a ValueError carrying
            # the JSON-RPC error object; decode_revert reads the revert data from either form.
            raise self.decode_revert(exc) from None
        except (ConnectionError, OSError) as exc:
            raise TransactionFailed(f"the node could not be reached: {exc}") from None
        if receipt["status"] != 1:
            raise TransactionFailed(f"transaction {receipt['transactionHash'].hex()} failed on chain")
        if self.confirmations:
            self._wait_confirmations(receipt)
        return receipt

    def transact_value(self, sender: Sender, to: str, value: int) -> TxReceipt:
        """Sends plain ether (to fund a fresh key on a local chain, for example)."""
        try:
            if isinstance(sender, LocalAccount):
                tx: TxParams = {
                    "from": sender.address,
                    "to": Web3.to_checksum_address(to),
                    "value": Wei(value),
                    "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
                    "gas": 21000,
                    "gasPrice": self.w3.eth.gas_price,
                    "chainId": self.chain_id,
                }
                tx_hash = self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)  # type: ignore[arg-type]
            else:
                tx_hash = self.w3.eth.send_transaction(
                    {"from": sender, "to": Web3.to_checksum_address(to), "value": Wei(value)}
                )
            return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        except (Web3Exception, ValueError, OSError) as exc:
            raise TransactionFailed(f"the transfer could not be sent: {exc}") from None

    def block_times(self, blocks: list[int]) -> dict[int, int]:
        """Timestamps of many blocks, fetched in JSON-RPC batches of 500."""
        times: dict[int, int] = {}
        for start in range(0, len(blocks), 500):
            chunk = blocks[start : start + 500]
            with self.w3.batch_requests() as batch:
                for number in chunk:
                    batch.add(self.w3.eth.get_block(number))
                answers = batch.execute()
            for number, block in zip(chunk, answers, strict=True):
                header: Any = block
                times[number] = int(header["timestamp"])
        return times

    def call(self, fn: ContractFunction) -> Any:
        """Calls a view function, turning a custom-error revert into ``ContractRevert``."""
        try:
            return fn.call()
        except (Web3Exception, ValueError) as exc:
            raise self.decode_revert(exc) from None

    def decode_revert(self, exc: Exception) -> ContractRevert | TransactionFailed:
        """Names the custom error behind a revert, when its selector is known."""
        data = _revert_data(exc)
        if len(data) >= 4:
            known = self._error_table().get(data[:4])
            if known is not None:
                name, inputs = known
                raw = abi_decode([abi_type(i) for i in inputs], data[4:])
                values = [
                    Web3.to_checksum_address(v) if i["type"] == "address" else v
                    for i, v in zip(inputs, raw, strict=True)
                ]
                return ContractRevert(name, values)
        return TransactionFailed(f"the node refused the transaction: {exc}")

    def _error_table(self) -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
        if self._errors is None:
            names = [n for n in ERROR_SOURCES if (self.artifacts.directory / f"{n}.json").is_file()]
            self._errors = self.artifacts.error_selectors(names)
        return self._errors

    def _wait_confirmations(self, receipt: TxReceipt) -> None:
        import time

        target = receipt["blockNumber"] + self.confirmations
        deadline = time.monotonic() + self.receipt_timeout
        while self.w3.eth.block_number < target:
            if time.monotonic() > deadline:
                raise TransactionFailed(f"{self.confirmations} confirmations not reached in time")
            time.sleep(0.5)


def _revert_data(exc: Exception) -> bytes:
    """The raw revert data behind a web3 error, wherever the provider put it."""
    data: object = getattr(exc, "data", None)
    if data is None and exc.args and isinstance(exc.args[0], dict):
        data = exc.args[0].get("data")
    if isinstance(data, dict):  # Ganache nests it: {"data": {"result": "0x..", ...}}
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes(HexBytes(data))
        except ValueError:
            return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return b""


class ContractClient:
    """Base of the SDK's per-contract clients: the one place that sends, calls and reads events.

    A client method is the contract call and its domain checks; everything else (building the
    call, sending it from a sender, decoding an event from the receipt, querying events from the
    deployment block on, the chain's clock) goes through the helpers below.
    """

    def __init__(self, chain: Chain, contract: Contract, from_block: int = 0) -> None:
        self.chain = chain
        self.contract = contract
        self.from_block = from_block

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def now(self) -> int:
        """The chain's time: the timestamp of its latest block (not this machine's clock)."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _function(self, name: str, *args: Any) -> ContractFunction:
        fn: ContractFunction = self.contract.functions[name](*args)
        return fn

    def _send(self, sender: Sender, function: str, *args: Any, value: int = 0) -> TxReceipt:
        """Sends ``function(*args)`` from ``sender`` and waits for the receipt (see ``Chain.transact``)."""
        return self.chain.transact(self._function(function, *args), sender, value)

    def _call(self, function: str, *args: Any, block: BlockIdentifier = "latest") -> Any:
        """Calls a view; a custom-error revert becomes ``ContractRevert``."""
        try:
            return self._function(function, *args).call(block_identifier=block)
        except (Web3Exception, ValueError) as exc:
            raise self.chain.decode_revert(exc) from None

    def _emitted(self, receipt: TxReceipt, event: str) -> list[EventData]:
        """The ``event`` logs this contract emitted in ``receipt``, decoded."""
        return list(self.contract.events[event]().process_receipt(receipt, errors=DISCARD))

    def _emitted_field(self, receipt: TxReceipt, event: str, field: str) -> Any:
        """One field of the first ``event`` this contract emitted in ``receipt``.

        Raises:
            ChainError: the transaction emitted no such event (a contract at the manifest's address
                that is not the one the SDK expects).
        """
        found = self._emitted(receipt, event)
        if not found:
            raise ChainError(
                f"transaction {receipt['transactionHash'].to_0x_hex()} emitted no {event} from {self.address}"
            )
        return found[0]["args"][field]

    def _events(self, event: str, **filters: Any) -> list[EventData]:
        """Every ``event`` log from the deployment block on whose indexed fields equal ``filters``."""
        try:
            return list(
                self.contract.events[event]().get_logs(from_block=self.from_block, argument_filters=filters)
            )
        except (Web3Exception, ValueError, OSError) as exc:
            raise ChainError(f"the node could not list {event} events: {exc}") from None
