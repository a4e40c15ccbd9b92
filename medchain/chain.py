"""Connection to an EVM node and the one path every transaction of the SDK takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

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


@dataclass(frozen=True)
class ChainLog:
    """One event a contract emitted, decoded locally from the node's raw log.

    Attributes:
        event: The event's name.
        args: Its arguments by name (addresses checksummed, structs as read-only mappings by
            field name, ``bytesN`` as bytes).
        block: The block number.
        log_index: The log's index in its block.
        timestamp: The block's timestamp (chain time, seconds).
        tx: The transaction hash (0x-hex).
        address: The emitting contract.
    """

    event: str
    args: Mapping[str, Any]
    block: int
    log_index: int
    timestamp: int
    tx: str
    address: str

    @property
    def position(self) -> tuple[int, int]:
        """(block, log index): the log's place in chain order."""
        return (self.block, self.log_index)


@dataclass(frozen=True)
class FailedTransaction:
    """A transaction to one of the suite's contracts that was mined and failed (status 0).

    Attributes:
        tx: Its hash (0x-hex).
        block: Its block.
        index: Its index in the block.
        timestamp: The block's timestamp.
        sender: Who sent it.
        contract: The contract's name.
        to: The contract's address.
        function: The function called (from the input's selector; its hex when unknown).
        error: The custom error's name (or the selector's hex, or "no revert data").
        args: The error's decoded arguments.
        source: Where the revert data came from: "trace" (``debug_traceTransaction``: the
            transaction re-executed in place), "replay" (``eth_call`` at the parent block) or
            "none" (neither gave any).
    """

    tx: str
    block: int
    index: int
    timestamp: int
    sender: str
    contract: str
    to: str
    function: str
    error: str
    args: tuple[Any, ...]
    source: Literal["trace", "replay", "none"]


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
        known = self.decode_error_data(_revert_data(exc))
        if known is not None:
            return known
        return TransactionFailed(f"the node refused the transaction: {exc}")

    def decode_error_data(self, data: bytes) -> ContractRevert | None:
        """The custom error encoded in revert ``data`` (selector and arguments), or None when the
        selector is not one of the suite's errors (or the data is not decodable)."""
        if len(data) < 4:
            return None
        known = self._error_table().get(data[:4])
        if known is None:
            return None
        name, inputs = known
        try:
            raw = abi_decode([abi_type(i) for i in inputs], data[4:])
        except Exception:  # malformed arguments behind a known selector: name it, without values
            return ContractRevert(name, [])
        values = [
            Web3.to_checksum_address(v) if i["type"] == "address" else v
            for i, v in zip(inputs, raw, strict=True)
        ]
        return ContractRevert(name, values)

    # ─── Reading history ────────────────────────────────────────────────────────────────────

    def rpc_batch(self, calls: Sequence[tuple[str, list[Any]]], chunk: int = 500) -> list[dict[str, Any]]:
        """Raw JSON-RPC calls sent in batches of ``chunk``: one answer per call, in order, each a
        dict holding ``result`` or ``error`` (an error in one call does not fail the others).

        Raises:
            ChainError: the node could not be reached or refused a whole batch.
        """
        answers: list[dict[str, Any]] = []
        provider: Any = self.w3.provider
        for start in range(0, len(calls), chunk):
            part = [(RPCEndpoint(method), params) for method, params in calls[start : start + chunk]]
            try:
                got = provider.make_batch_request(part)
            except (Web3Exception, ValueError, OSError) as exc:
                raise ChainError(f"the node did not answer a batch of {part[0][0]} requests: {exc}") from None
            if not isinstance(got, list) or len(got) != len(part):
                message = got.get("error") if isinstance(got, dict) else got
                raise ChainError(f"the node refused a batch of {part[0][0]} requests: {message}")
            answers += [dict(a) for a in got]
        return answers

    def failed_transactions(
        self, contracts: Mapping[str, Contract], from_block: int, to_block: int
    ) -> list[FailedTransaction]:
        """Transactions to ``contracts`` mined in ``from_block..to_block`` that failed (status 0),
        with the function called and the custom error that refused it.

        A refused transaction leaves no event, only its receipt: every block of the range is read
        with its transactions (``eth_getBlockByNumber``), the receipts of blocks holding a call to
        one of the contracts (``eth_getBlockReceipts``, else one ``eth_getTransactionReceipt`` per
        transaction), and for each failure the revert data, from ``debug_traceTransaction`` with
        the call tracer (exact: the transaction re-executed where it stood in its block; Anvil,
        Geth and Besu with the DEBUG API answer it) or, where the node has no debug API, an
        ``eth_call`` of the same call at the end of the parent block (``source`` says "replay":
        it can differ when an earlier transaction of the same block changed the state it read).

        Args:
            contracts: Name -> contract (its ABI names the function called).
            from_block: First block (inclusive).
            to_block: Last block (inclusive).
        """
        by_address = {str(c.address).lower(): (name, c) for name, c in contracts.items()}
        blocks = self.rpc_batch(
            [("eth_getBlockByNumber", [hex(n), True]) for n in range(from_block, to_block + 1)], chunk=200
        )
        candidates: dict[int, list[dict[str, Any]]] = {}
        times: dict[int, int] = {}
        for answer in blocks:
            block = answer.get("result")
            if not isinstance(block, dict):
                continue
            number = int(block["number"], 16)
            times[number] = int(block["timestamp"], 16)
            calls = [t for t in block.get("transactions", []) if str(t.get("to") or "").lower() in by_address]
            if calls:
                candidates[number] = calls
        failed: list[dict[str, Any]] = []
        numbers = sorted(candidates)
        receipts = self.rpc_batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
        for number, answer in zip(numbers, receipts, strict=True):
            wanted = {str(t["hash"]).lower(): t for t in candidates[number]}
            result = answer.get("result")
            if not isinstance(result, list):  # no eth_getBlockReceipts: one receipt per transaction
                single = self.rpc_batch([("eth_getTransactionReceipt", [h]) for h in wanted])
                result = [a.get("result") for a in single]
            for receipt in result:
                if not isinstance(receipt, dict):
                    continue
                tx = wanted.get(str(receipt.get("transactionHash", "")).lower())
                if tx is not None and int(str(receipt.get("status", "0x1")), 16) == 0:
                    failed.append(tx)
        if not failed:
            return []
        traces = self.rpc_batch(
            [("debug_traceTransaction", [t["hash"], {"tracer": "callTracer"}]) for t in failed], chunk=100
        )
        out: list[FailedTransaction] = []
        for tx, trace in zip(failed, traces, strict=True):
            name, contract = by_address[str(tx["to"]).lower()]
            number = int(tx["blockNumber"], 16)
            source: Literal["trace", "replay", "none"] = "trace"
            result = trace.get("result")
            output = result.get("output") if isinstance(result, dict) else None
            if not isinstance(output, str):
                source, output = self._replay(tx, number)
            data = bytes(HexBytes(output)) if isinstance(output, str) and output.startswith("0x") else b""
            refusal = self.decode_error_data(data)
            if refusal is not None:
                error, args = refusal.error, refusal.args_
            else:
                error = "0x" + data[:4].hex() if len(data) >= 4 else "no revert data"
                args = ()
            out.append(
                FailedTransaction(
                    tx=str(tx["hash"]),
                    block=number,
                    index=int(tx["transactionIndex"], 16),
                    timestamp=times[number],
                    sender=Web3.to_checksum_address(tx["from"]),
                    contract=name,
                    to=Web3.to_checksum_address(tx["to"]),
                    function=_function_name(contract, str(tx.get("input") or "0x")),
                    error=error,
                    args=tuple(args),
                    source=source,
                )
            )
        return out

    def _replay(self, tx: dict[str, Any], block: int) -> tuple[Literal["replay", "none"], str | None]:
        """The revert data of ``tx`` replayed with ``eth_call`` at the end of its parent block."""
        call = {k: tx[k] for k in ("from", "to", "input", "value", "gas") if tx.get(k) is not None}
        call["data"] = call.pop("input", "0x")
        (answer,) = self.rpc_batch([("eth_call", [call, hex(block - 1)])])
        error = answer.get("error")
        data = error.get("data") if isinstance(error, dict) else None
        if isinstance(data, dict):
            data = data.get("data") or data.get("result")
        if isinstance(data, str) and data.startswith("0x"):
            return "replay", data
        return "none", None

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

    def logs(self, from_block: int, to_block: int, events: Sequence[str] = ()) -> list[ChainLog]:
        """Every event this contract emitted in ``from_block..to_block`` (inclusive), or only those
        named in ``events``, decoded, in chain order.

        One ``eth_getLogs`` per 10,000 blocks, decoded with eth_abi (fast enough for a scenario's
        tens of thousands of logs); block times come with the logs where the node provides them
        (Anvil's ``blockTimestamp``), otherwise from batched block requests.

        Raises:
            ChainError: the node could not list the logs.
        """
        decoders = _event_decoders(self.contract)
        wanted = set(events)
        unknown = wanted - {name for name, _decode in decoders.values()}
        if unknown:
            raise ChainError(f"{self.address} declares no event {', '.join(sorted(unknown))}")
        topics = ["0x" + t.hex() for t, (name, _d) in decoders.items() if not wanted or name in wanted]
        raw: list[dict[str, Any]] = []
        provider: Any = self.chain.w3.provider
        for start in range(from_block, to_block + 1, LOG_CHUNK):
            request = {
                "address": self.contract.address,
                "fromBlock": hex(start),
                "toBlock": hex(min(to_block, start + LOG_CHUNK - 1)),
                "topics": [topics],
            }
            try:
                answer = provider.make_request("eth_getLogs", [request])
            except (Web3Exception, ValueError, OSError) as exc:
                raise ChainError(f"the node could not list the events of {self.address}: {exc}") from None
            if "error" in answer:
                raise ChainError(f"the node could not list the events of {self.address}: {answer['error']}")
            raw += answer.get("result") or []
        raw.sort(key=lambda e: (int(e["blockNumber"], 16), int(e["logIndex"], 16)))
        times = self.chain.block_times(
            sorted({int(e["blockNumber"], 16) for e in raw if "blockTimestamp" not in e})
        )
        out: list[ChainLog] = []
        for entry in raw:
            found = decoders.get(bytes.fromhex(entry["topics"][0][2:]))
            if found is None:
                continue
            name, decode = found
            block = int(entry["blockNumber"], 16)
            stamp = entry.get("blockTimestamp")
            out.append(
                ChainLog(
                    event=name,
                    args=MappingProxyType(decode(entry)),
                    block=block,
                    log_index=int(entry["logIndex"], 16),
                    timestamp=int(stamp, 16) if isinstance(stamp, str) else times[block],
                    tx=str(entry["transactionHash"]),
                    address=Web3.to_checksum_address(entry["address"]),
                )
            )
        return out

    def _events(self, event: str, **filters: Any) -> list[EventData]:
        """Every ``event`` log from the deployment block on whose indexed fields equal ``filters``."""
        try:
            return list(
                self.contract.events[event]().get_logs(from_block=self.from_block, argument_filters=filters)
            )
        except (Web3Exception, ValueError, OSError) as exc:
            raise ChainError(f"the node could not list {event} events: {exc}") from None


LOG_CHUNK = 10_000
"""Blocks per ``eth_getLogs`` request (public nodes cap the range; Anvil does not)."""


def _function_name(contract: Contract, data: str) -> str:
    """The name of the function a transaction's input calls, or its selector's hex."""
    selector = data[:10].lower()
    entries: list[dict[str, Any]] = [dict(e) for e in contract.abi]
    for entry in entries:
        if entry.get("type") == "function":
            signature = f"{entry['name']}({','.join(abi_type(dict(i)) for i in entry.get('inputs', []))})"
            if "0x" + Web3.keccak(text=signature)[:4].hex() == selector:
                return str(entry["name"])
    return selector


def _event_decoders(contract: Contract) -> dict[bytes, tuple[str, Any]]:
    """topic0 -> (event name, decoder of a raw JSON-RPC log into its arguments) for each event of
    the contract's ABI (anonymous events have no topic0 and are skipped)."""
    table: dict[bytes, tuple[str, Any]] = {}
    entries: list[dict[str, Any]] = [dict(e) for e in contract.abi]
    for abi in entries:
        if abi.get("type") == "event" and not abi.get("anonymous"):
            signature = f"{abi['name']}({','.join(abi_type(dict(i)) for i in abi['inputs'])})"
            table[bytes(Web3.keccak(text=signature))] = (str(abi["name"]), log_decoder(abi))
    return table


def log_decoder(abi: dict[str, Any]) -> Any:
    """A function decoding one raw JSON-RPC log of event ``abi`` into a dict of its arguments
    (addresses checksummed, structs as read-only mappings, indexed dynamic values as their hash)."""
    inputs = [dict(i) for i in abi["inputs"]]
    indexed = [i for i in inputs if i.get("indexed")]
    plain = [i for i in inputs if not i.get("indexed")]
    plain_types = [abi_type(i) for i in plain]

    def convert(entry: dict[str, Any], value: Any) -> Any:
        kind = str(entry["type"])
        if kind == "address":
            return Web3.to_checksum_address(value)
        if kind == "tuple":
            return MappingProxyType(
                {c["name"]: convert(dict(c), v) for c, v in zip(entry["components"], value, strict=True)}
            )
        return value

    def decode(log: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for entry, topic in zip(indexed, log["topics"][1:], strict=True):
            kind = abi_type(entry)
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[entry["name"]] = bytes.fromhex(topic[2:])  # a dynamic value is indexed by its hash
                continue
            (value,) = abi_decode([kind], bytes.fromhex(topic[2:]))
            args[entry["name"]] = convert(entry, value)
        values = abi_decode(plain_types, bytes.fromhex(log["data"][2:]))
        for entry, value in zip(plain, values, strict=True):
            args[entry["name"]] = convert(entry, value)
        return args

    return decode
