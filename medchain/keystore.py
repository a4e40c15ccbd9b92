"""Encrypted key files: the Web3 Secret Storage format (eth-account's keystore, scrypt).

One JSON file per account under a folder, named ``<name>.json``; the name is what ``--from``
takes. A key is never written in clear and never taken from a command line.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from medchain.errors import ConfigurationError

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
STRONG_SCRYPT_N = 262144
"""geth's standard scrypt cost (about a second to unlock here)."""
KEY_LIKE = re.compile(r"(0x)?[0-9a-fA-F]{64}")
"""What a hex private key looks like (32 bytes, with or without 0x)."""
LIGHT_SCRYPT_N = 4096
"""geth's --lightkdf cost: for throw-away development keys only."""


class KeystoreError(ConfigurationError):
    """A keystore file is missing, unreadable, or the password does not open it."""


@dataclass(frozen=True)
class StoredAccount:
    """A keystore entry as listed: its name, address and file (no key)."""

    name: str
    address: str
    path: Path


class Keystore:
    """The keystore files in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.json"

    def create(self, name: str, password: str, light: bool = False) -> StoredAccount:
        """A new random key, encrypted under ``password``, saved as ``name``."""
        account: LocalAccount = Account.create()
        return self.store(name, bytes(account.key), password, light)

    def store(self, name: str, private_key: bytes, password: str, light: bool = False) -> StoredAccount:
        """Saves ``private_key`` encrypted under ``password`` as ``name``; refuses to overwrite.

        Raises:
            KeystoreError: the name is taken or malformed, the key is not a secp256k1 key, the
                password is empty, or the file cannot be written.
        """
        path = self.path(name)
        if path.exists():
            raise KeystoreError(f"an account named {name!r} exists already ({path}); choose another name")
        if not password:
            raise KeystoreError("an empty password does not protect a key; give a password")
        try:
            account: LocalAccount = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(f"not a valid private key ({exc})") from None
        n = LIGHT_SCRYPT_N if light else STRONG_SCRYPT_N
        document = Account.encrypt(private_key, password, kdf="scrypt", iterations=n)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            tmp = path.with_suffix(".json.tmp")
            # A stale temporary file keeps its own (possibly loose) mode under O_TRUNC: start anew.
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)  # fails if the name was taken meanwhile: never overwrite a key
            tmp.unlink()
        except FileExistsError:
            tmp.unlink(missing_ok=True)
            raise KeystoreError(f"an account named {name!r} exists already ({path})") from None
        except OSError as exc:
            raise KeystoreError(f"cannot write the keystore file {path}: {exc.strerror or exc}") from None
        return StoredAccount(name, account.address, path)

    def accounts(self) -> list[StoredAccount]:
        """Every keystore file in the folder, by name."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(StoredAccount(path.stem, _address_in(self._read(path)), path))
            except KeystoreError:
                continue  # not a keystore file: not an account
        return found

    def address(self, name: str) -> str:
        """The address of ``name`` (no password needed: the file states it)."""
        return _address_in(self._read(self._existing(name)))

    def unlock(self, name: str, password: str) -> LocalAccount:
        """The key of ``name``, decrypted.

        Raises:
            KeystoreError: no such account, or ``password`` does not open it.
        """
        document = self._read(self._existing(name))
        try:
            key = Account.decrypt(document, password)
        except ValueError:
            raise KeystoreError(f"wrong password for account {name!r}") from None
        account: LocalAccount = Account.from_key(key)
        return account

    def has(self, name: str) -> bool:
        return bool(NAME.fullmatch(name)) and self.path(name).is_file()

    def _existing(self, name: str) -> Path:
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(a.name for a in self.accounts()) or "none yet"
            raise KeystoreError(
                f"no account named {shown(name)} in {self.directory} (known: {known}); "
                "create one with `medchain account new NAME`"
            )
        return path

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            document: dict[str, Any] = json.loads(path.read_text())
            _address_in(document)
            return document
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeystoreError(f"{path} is not a readable keystore file ({exc})") from None


def shown(text: str) -> str:
    """``text`` quoted for an error message, unless it looks like a private key: a key pasted into
    the wrong option must not be copied to a terminal, a CI log or a bug report."""
    if KEY_LIKE.fullmatch(text.strip()):
        return "a value that looks like a private key (not repeated here; never give a key on a command line)"
    return repr(text)


def check_name(name: str) -> str:
    """An account name: lower-case letters, digits, '-', '_', '.', at most 64 characters."""
    if not NAME.fullmatch(name):  # `$` alone would let a final newline through
        raise KeystoreError(
            f"{shown(name)} is not a usable account name: use lower-case letters, digits, '-', '_' or '.' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def _address_in(document: dict[str, Any]) -> str:
    raw = str(document["address"])
    address = raw if raw.startswith("0x") else "0x" + raw
    if not Web3.is_address(address) or "crypto" not in document:
        raise ValueError("no address or crypto section")
    return str(Web3.to_checksum_address(address))
