"""Local development chains from the project's node_modules: a throw-away one for a ``with`` block
(Anvil or Ganache), and a persistent Anvil for ``medchain chain up / down``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from web3 import Web3

from medchain.errors import ChainError, ConfigurationError

_NODE_BIN = Path(__file__).resolve().parent.parent / "node_modules" / ".bin"
CHAINS = ("anvil", "ganache")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    local = _NODE_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(f"{name} was not found; run `make setup` (it installs {name} from npm)")
    return found


DEV_MNEMONICS = (
    "test test test test test test test test test test test junk",  # Anvil's default accounts
    # Ganache's --wallet.deterministic accounts:
    "myth like bonus scare over problem client lizard pioneer submit female collect",
)


def dev_private_keys(count: int = 20) -> dict[str, bytes]:
    """Private keys of the well-known development accounts of Anvil and Ganache, by address.

    They exist so the demo's institutions can decrypt on a throw-away local chain. They are public:
    never use them anywhere else.
    """
    from eth_account import Account
    from eth_account.hdaccount import key_from_seed
    from eth_account.hdaccount.mnemonic import Mnemonic

    found: dict[str, bytes] = {}
    for mnemonic in DEV_MNEMONICS:
        seed = Mnemonic.to_seed(mnemonic)
        for i in range(count):
            key = bytes(key_from_seed(seed, f"m/44'/60'/0'/0/{i}"))
            found[Account.from_key(key).address] = key
    return found


class LocalChain:
    """A local development chain that lives as long as the ``with`` block.

    Anvil runs with 20 unlocked accounts and a zero base fee. Ganache runs the shanghai hardfork
    (its newest) with a deterministic wallet and a non-zero gas price, because on shanghai a
    transaction priced at zero would never be mined.
    """

    def __init__(
        self, kind: str = "anvil", port: int | None = None, accounts: int = 20, block_time: int | None = None
    ) -> None:
        if kind not in CHAINS:
            raise ConfigurationError(f"unknown local chain {kind!r}; expected one of: {', '.join(CHAINS)}")
        self.kind = kind
        self.port = port or free_port()
        self.accounts = accounts
        self.block_time = block_time
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "anvil":
            cmd = [
                _executable("anvil"),
                "--quiet",
                "--port",
                str(self.port),
                "--accounts",
                str(self.accounts),
                "--block-base-fee-per-gas",
                "0",
                "--gas-limit",
                "30000000",
            ]
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            return cmd
        cmd = [
            _executable("ganache"),
            "--server.port",
            str(self.port),
            "--wallet.totalAccounts",
            str(self.accounts),
            "--wallet.deterministic",
            "--chain.hardfork",
            "shanghai",
            "--miner.defaultGasPrice",
            "1000000000",
            "--miner.blockGasLimit",
            "30000000",
            "--logging.quiet",
        ]
        if self.block_time:
            cmd += ["--miner.blockTime", str(self.block_time)]
        return cmd

    def start(self, timeout: float = 60.0) -> Web3:
        """Starts the chain and waits until it answers JSON-RPC."""
        self._process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = (
                    self._process.stderr.read().decode(errors="replace").strip()
                    if self._process.stderr
                    else ""
                )
                raise ChainError(
                    f"{self.kind} exited at start (code {self._process.returncode}): {err[-300:]}"
                )
            try:
                if w3.is_connected():
                    return w3
            except Exception:
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainError(f"{self.kind} did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> Web3:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ChainRecord:
    """What ``medchain chain up`` leaves in its folder so that later commands find the chain."""

    pid: int
    port: int
    started_at: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class PersistentChain:
    """A local Anvil that outlives the command that started it, its state saved in ``directory``.

    ``up`` starts Anvil in the background with ``--state`` (loaded at start, written every few
    seconds and at exit), so ``down`` then ``up`` continues the same chain: same accounts,
    contracts, blocks and time.
    """

    STATE_INTERVAL = 5
    """Seconds between state snapshots (a crash loses at most this much)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state.json"
        self.record_file = directory / "chain.json"
        self.log_file = directory / "anvil.log"

    def record(self) -> ChainRecord | None:
        """The running chain's record, or None if none is running (a stale record is removed)."""
        try:
            data = json.loads(self.record_file.read_text())
            record = ChainRecord(int(data["pid"]), int(data["port"]), float(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _alive(record.pid):
            self.record_file.unlink(missing_ok=True)
            return None
        return record

    def up(self, port: int, block_time: int | None = None, timeout: float = 30.0) -> tuple[ChainRecord, bool]:
        """Starts the chain unless it runs; returns its record and whether this call started it.

        Raises:
            ChainError: the port is taken by something else, or Anvil did not come up.
        """
        running = self.record()
        if running is not None:
            return running, False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise ChainError(
                    f"port {port} is already in use by another program; pick another with --port "
                    "(or $MEDCHAIN_CHAIN_PORT)"
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            _executable("anvil"),
            "--port",
            str(port),
            "--state",
            str(self.state_file),
            "--state-interval",
            str(self.STATE_INTERVAL),
            "--accounts",
            "20",
            "--block-base-fee-per-gas",
            "0",
            "--gas-limit",
            "30000000",
        ]
        if block_time:
            cmd += ["--block-time", str(block_time)]
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        record = ChainRecord(process.pid, port, time.time())
        w3 = Web3(Web3.HTTPProvider(record.url, request_kwargs={"timeout": 5}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise ChainError(f"anvil exited at start (code {process.returncode}): {tail[0][-300:]}")
            try:
                if w3.is_connected():
                    tmp = self.record_file.with_suffix(".tmp")
                    tmp.write_text(
                        json.dumps({"pid": record.pid, "port": port, "started_at": record.started_at})
                    )
                    tmp.replace(self.record_file)
                    return record, True
            except Exception:
                pass
            time.sleep(0.1)
        process.terminate()
        raise ChainError(
            f"anvil did not answer on {record.url} within {timeout:.0f} s (log: {self.log_file})"
        )

    def down(self, timeout: float = 20.0) -> ChainRecord | None:
        """Stops the chain (Anvil writes its state on the way out); None if none was running."""
        record = self.record()
        if record is None:
            return None
        os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(record.pid):
            if time.monotonic() > deadline:
                os.kill(record.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        self.record_file.unlink(missing_ok=True)
        return record

    def reset(self) -> None:
        """Forgets the saved state (the chain must be down)."""
        if self.record() is not None:
            raise ChainError("the chain is running; run `medchain chain down` first")
        self.state_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        done, _status = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
