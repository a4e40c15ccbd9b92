"""``medchain account``: encrypted keystore files (Web3 Secret Storage, scrypt) that --from names."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from medchain.cli._context import Context
from medchain.cli._render import Column
from medchain.keystore import StoredAccount

COLUMNS: list[Column[StoredAccount]] = [
    Column("name", lambda a: a.name),
    Column("address", lambda a: a.address),
    Column("file", lambda a: a.path),
]


@click.group()
def account() -> None:
    """Encrypted keystore accounts in $MEDCHAIN_HOME/keystore: `--from NAME` signs with one.

    The password comes from a prompt or $MEDCHAIN_PASSWORD. A private key is never taken as a
    command-line argument (it would stay in the shell history and the process list).
    """


@account.command("new")
@click.argument("name")
@click.option(
    "--light-kdf",
    is_flag=True,
    help="Cheaper scrypt (n=4096, like geth --lightkdf): faster to unlock, weaker against guessing. "
    "Development keys only.",
)
@click.pass_obj
def account_new(obj: Context, name: str, light_kdf: bool) -> None:
    """Create a new random key saved as NAME, encrypted under a password."""
    from medchain.keystore import check_name

    check_name(name)
    created = obj.keystore.create(name, obj.password(name, confirm=True), light=light_kdf)
    obj.show_one(f"Account {name}", {"name": created.name, "address": created.address, "file": created.path})


@account.command("import")
@click.argument("name")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the hex private key (default: a hidden prompt, or the first line of stdin).",
)
@click.option("--light-kdf", is_flag=True, help="Cheaper scrypt (n=4096): development keys only.")
@click.pass_obj
def account_import(obj: Context, name: str, key_file: Path | None, light_kdf: bool) -> None:
    """Save an existing private key as NAME, encrypted under a password."""
    from medchain.errors import ConfigurationError
    from medchain.keystore import check_name

    check_name(name)
    if key_file is not None:
        try:
            text = key_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {key_file}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        text = click.prompt("private key (hex)", hide_input=True).strip()
    else:
        text = sys.stdin.readline().strip()
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError("that is not a private key (64 hex digits); nothing was saved")
    stored = obj.keystore.store(name, key, obj.password(name, confirm=True), light=light_kdf)
    obj.show_one(f"Account {name}", {"name": stored.name, "address": stored.address, "file": stored.path})


@account.command("list")
@click.pass_obj
def account_list(obj: Context) -> None:
    """List the keystore accounts (names, addresses, files; no password needed)."""
    obj.show(f"Accounts in {obj.keystore.directory}", obj.keystore.accounts(), COLUMNS)
