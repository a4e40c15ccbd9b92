"""Parameter types and options shared by the command groups: bad input fails as one usage line."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from medchain.cli._context import Context

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_DECIMALS = 6
"""The settlement token's decimals (the local test token's, like USDC's)."""


class AddressParam(click.ParamType[Any]):
    """An Ethereum address (any case), returned checksummed."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from web3 import Web3

        from medchain.keystore import shown

        text = str(value).strip()
        if not Web3.is_address(text):
            self.fail(f"{shown(text)} is not an Ethereum address (0x followed by 40 hex digits)", param, ctx)
        return str(Web3.to_checksum_address(text))


class AccountParam(click.ParamType[Any]):
    """An address, or the name of a keystore account (its address is read from the file)."""

    name = "account"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from medchain.errors import MedChainError

        context = ctx.find_object(Context) if ctx is not None else None
        if context is None:
            return ADDRESS.convert(value, param, ctx)
        try:
            return context.account_address(str(value))
        except MedChainError as exc:
            self.fail(str(exc), param, ctx)


class Hex32Param(click.ParamType[Any]):
    """A 32-byte value in hex (a record, grant, batch or claim id, a digest)."""

    name = "hex32"

    def __init__(self, what: str = "a 32-byte id") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        text = str(value).strip()
        raw = text.removeprefix("0x")
        try:
            out = bytes.fromhex(raw)
        except ValueError:
            out = b""
        if len(out) != 32 or len(raw) != 64:
            self.fail(f"{text!r} is not {self.what} (64 hex digits, optionally 0x-prefixed)", param, ctx)
        return out


class GtinParam(click.ParamType[Any]):
    """A GTIN-8/12/13/14 with a valid check digit, as the integer the contract stores."""

    name = "gtin"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from medchain.drug import GS1Error, parse_gtin

        try:
            return parse_gtin(str(value))
        except GS1Error as exc:
            self.fail(str(exc), param, ctx)


class KindParam(click.ParamType[Any]):
    name = "kind"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from medchain.types import Kind

        try:
            return Kind.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class PurposeParam(click.ParamType[Any]):
    """An HL7 PurposeOfUse code: TREAT, HPAYMT, HRESCH or ETREAT."""

    name = "purpose"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from medchain.types import Purpose

        try:
            return Purpose.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AmountParam(click.ParamType[Any]):
    """A money amount in settlement-token units, written as a decimal (``12.50``)."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            self.fail(f"{text!r} is not an amount (a number such as 12.50)", param, ctx)
        units = amount * 10**TOKEN_DECIMALS
        if amount < 0 or units != units.to_integral_value():
            self.fail(f"{text!r} must be positive with at most {TOKEN_DECIMALS} decimals", param, ctx)
        return int(units)


def money(units: int) -> str:
    """Token units as the decimal amount people read."""
    return f"{Decimal(units) / 10**TOKEN_DECIMALS:.2f}"


ADDRESS = AddressParam()
ACCOUNT = AccountParam()
HEX32 = Hex32Param()
DIGEST = Hex32Param("a SHA-256 digest")
RECORD_ID = Hex32Param("a record id")
GRANT_ID = Hex32Param("a grant id")
CLAIM_ID = Hex32Param("a claim id")
GTIN = GtinParam()
KIND = KindParam()
PURPOSE = PurposeParam()
AMOUNT = AmountParam()
RATING = click.IntRange(1, 100)
REASON = click.IntRange(0, 65535)


def store_option(fn: F) -> F:
    """``--store DIR``: the folder of record ciphertexts."""
    return click.option(
        "--store",
        "store_path",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of record ciphertexts [default: $MEDCHAIN_HOME/store].",
    )(fn)


def vault_option(fn: F) -> F:
    """``--vault FILE``: the custodian's key vault."""
    return click.option(
        "--vault",
        "vault_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The custodian's key vault [default: $MEDCHAIN_HOME/vault.sqlite].",
    )(fn)


def write_atomically(path: Path, text: str, private: bool = False) -> None:
    """Writes ``text`` to ``path`` whole or not at all (no partial file on failure).

    Never replaces a keystore file (an encrypted key, wherever it is kept): a mistyped ``-o`` would
    destroy the only copy of a key. With ``private`` (health data, claims with diagnoses) the file
    is readable and writable by its owner only, whatever the umask or an earlier file's mode.
    """
    import os

    from medchain.errors import ConfigurationError

    if _is_keystore_file(path):
        raise ConfigurationError(
            f"{path} holds an encrypted key (a keystore file); nothing was written: choose another file"
        )
    tmp = path.with_name(path.name + ".tmp")
    try:
        # A stale temporary file (a crash, or planted) keeps its own mode under O_TRUNC: start anew.
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        tmp.replace(path)
    except OSError as exc:
        with suppress(OSError):  # unlink fails too when the folder is missing or not a folder
            tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None


KEYSTORE_PROBE_BYTES = 65536
"""A keystore file is a few hundred bytes; larger files are not read to check."""


def _is_keystore_file(path: Path) -> bool:
    """Whether ``path`` is a Web3 Secret Storage document (an encrypted key)."""
    import json

    try:
        if not path.is_file() or path.stat().st_size > KEYSTORE_PROBE_BYTES:
            return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and ("crypto" in document or "Crypto" in document)


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content, or one line saying why it cannot be read."""
    import json

    from medchain.errors import ConfigurationError

    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON ({exc})") from None
