"""What every command shares: the node, the deployment, who signs, where local files live, output."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medchain import settings

if TYPE_CHECKING:  # imported on use: web3 and the SDK take most of a second to import
    from eth_account.signers.local import LocalAccount

    from medchain.chain import Chain, Sender
    from medchain.cli._render import Column
    from medchain.ehr import EHRClient
    from medchain.keystore import Keystore
    from medchain.suite import Suite
    from medchain.vault import KeyVault


class Context:
    """Options shared by every sub-command: node, manifest, sender, output format."""

    def __init__(
        self,
        rpc: str | None,
        manifest: Path | None,
        sender: str | None,
        as_json: bool = False,
        field: str | None = None,
    ) -> None:
        self.home = settings.home()
        self.rpc = rpc or settings.RPC.get() or self._local_chain_url() or settings.rpc_url()
        self.manifest_option = manifest
        self.sender_option = sender
        self.as_json = as_json
        self.field = field

    @property
    def chain_dir(self) -> Path:
        """Where ``medchain chain up`` keeps the local chain's state, log and record."""
        return self.home / "chain"

    def _local_chain_url(self) -> str | None:
        """The URL of the chain ``medchain chain up`` started, from its record (no process check)."""
        import json

        try:
            port = int(json.loads((self.chain_dir / "chain.json").read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return f"http://127.0.0.1:{port}"

    # ─── Chain and deployment ───────────────────────────────────────────────────────────────

    @cached_property
    def chain(self) -> Chain:
        """The node at --rpc (one connection per command)."""
        from medchain.chain import Chain, connect

        return Chain(connect(self.rpc))

    def manifest_path(self, chain_id: int) -> Path:
        from medchain.manifest import default_manifest_path

        return self.manifest_option or default_manifest_path(chain_id)

    @cached_property
    def suite(self) -> Suite:
        """The deployment's clients; the manifest must be for this chain and its contracts present."""
        from medchain.suite import Suite

        return Suite.from_manifest(self.chain.w3, self.manifest_path(self.chain.chain_id))

    def ehr(self, store: Path | None) -> EHRClient:
        """The EHR client over the record store at ``store`` (default $MEDCHAIN_HOME/store)."""
        from medchain.store import LocalFolderStore

        return self.suite.ehr(LocalFolderStore(store or self.home / "store"))

    def vault(self, path: Path | None) -> KeyVault:
        from medchain.vault import KeyVault

        return KeyVault(path or self.home / "vault.sqlite")

    # ─── Accounts ───────────────────────────────────────────────────────────────────────────

    @cached_property
    def keystore(self) -> Keystore:
        from medchain.keystore import Keystore

        return Keystore(self.home / "keystore")

    def password(self, name: str, confirm: bool = False) -> str:
        """$MEDCHAIN_PASSWORD, else a hidden prompt."""
        given = settings.PASSWORD.get()
        if given is not None:
            return given
        from medchain.errors import ConfigurationError

        try:
            first = getpass.getpass(f"password for account {name!r}: ")
            if confirm and getpass.getpass("repeat the password: ") != first:
                raise ConfigurationError("the two passwords differ; nothing was saved")
        except EOFError:
            raise ConfigurationError(
                f"no password: set ${settings.PASSWORD.name} or run in a terminal to be asked"
            ) from None
        return first

    def account_address(self, who: str) -> str:
        """An address given as itself or as a keystore account name (no password needed)."""
        from web3 import Web3

        from medchain.errors import ConfigurationError
        from medchain.keystore import shown

        text = who.strip()
        if Web3.is_address(text):
            return str(Web3.to_checksum_address(text))
        if text.startswith("0x"):
            raise ConfigurationError(
                f"{shown(text)} is not an Ethereum address (0x followed by 40 hex digits)"
            )
        return self.keystore.address(text)

    @cached_property
    def _sender(self) -> Sender:
        from eth_account import Account
        from web3 import Web3

        from medchain.errors import ConfigurationError
        from medchain.keystore import shown

        option = self.sender_option
        if option:
            text = option.strip()
            if Web3.is_address(text):
                return Web3.to_checksum_address(text)
            if text.startswith("0x"):
                raise ConfigurationError(
                    f"--from {shown(text)} is not an Ethereum address or an account name"
                )
            return self.keystore.unlock(text, self.password(text))
        key = settings.PRIVATE_KEY.get()
        if key:
            try:
                account: LocalAccount = Account.from_key(key)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"${settings.PRIVATE_KEY.name} is not a valid private key ({exc})"
                ) from None
            return account
        raise ConfigurationError(
            "say who signs: --from ACCOUNT (a keystore name from `medchain account list`, or an address "
            f"the node unlocks), or set ${settings.PRIVATE_KEY.name}"
        )

    def sender(self) -> Sender:
        """The account that signs (keystore name, node-unlocked address, or $MEDCHAIN_PRIVATE_KEY)."""
        return self._sender

    def sender_address(self) -> str:
        sender = self.sender()
        return sender if isinstance(sender, str) else str(sender.address)

    def local_key(self, why: str) -> LocalAccount:
        """The sender as a local key: needed to sign off chain or decrypt, not only to send."""
        from eth_account.signers.local import LocalAccount

        from medchain.errors import ConfigurationError

        sender = self.sender()
        if not isinstance(sender, LocalAccount):
            raise ConfigurationError(
                f"{why} needs the key itself, not an address the node unlocks: use --from with a keystore "
                f"account (`medchain account new/import`) or ${settings.PRIVATE_KEY.name}"
            )
        return sender

    # ─── Output ─────────────────────────────────────────────────────────────────────────────

    def show(self, title: str, rows: Sequence[Any], columns: Sequence[Column[Any]]) -> None:
        """Rows as a table, or as a JSON list with --json."""
        from medchain.cli._render import show_rows

        show_rows(self.as_json, title, rows, columns, self.field)

    def show_one(self, title: str, fields: dict[str, Any]) -> None:
        """One result as a field/value table, or as a JSON object with --json."""
        from medchain.cli._render import show_fields

        show_fields(self.as_json, title, fields, self.field)

    def note(self, text: str) -> None:
        """A human remark on stderr (never mixed into --json output on stdout)."""
        import click

        click.echo(text, err=True)
