"""One renderer: a list of columns gives both the rich table and the ``--json`` output."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

import click

T = TypeVar("T")


@dataclass(frozen=True)
class Column(Generic[T]):
    """A column: its header, how to read its value from a row, and how short to show it.

    ``key`` names the field in JSON (default: the header in snake case). ``short`` abbreviates
    32-byte ids in the table only; JSON always carries full values.
    """

    header: str
    value: Callable[[T], Any]
    key: str | None = None
    short: bool = False

    @property
    def json_key(self) -> str:
        return self.key or self.header.lower().replace(" ", "_").replace("-", "_")


def plain(value: Any) -> Any:
    """A value as JSON carries it: bytes as 0x-hex, enums by lower-case name, paths as text."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Enum):
        label = getattr(value, "label", None)
        return label if isinstance(label, str) else str(value.name).lower()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def text(value: Any, short: bool = False) -> str:
    """A value as the table shows it."""
    shown = plain(value)
    if shown is None:
        return ""
    if isinstance(shown, bool):
        return "yes" if shown else "no"
    if isinstance(shown, list):
        return ", ".join(text(v, short) for v in shown)
    if isinstance(shown, dict):
        return ", ".join(f"{k}={text(v, short)}" for k, v in shown.items())
    out = str(shown)
    if short and out.startswith("0x") and len(out) == 66:
        return out[:14] + "…"
    return out


def show_rows(
    as_json: bool, title: str, rows: Sequence[T], columns: Sequence[Column[T]], field: str | None = None
) -> None:
    if field is not None:
        column = _pick(field, [c.json_key for c in columns])
        chosen = next(c for c in columns if c.json_key == column)
        for r in rows:
            click.echo(_bare(chosen.value(r)))
        return
    if as_json:
        data = [{c.json_key: plain(c.value(r)) for c in columns} for r in rows]
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c.header, overflow="fold")
    for r in rows:
        table.add_row(*(text(c.value(r), c.short) for c in columns))
    if not rows:
        table.caption = "(none)"
    _console().print(table)


def show_fields(as_json: bool, title: str, fields: dict[str, Any], field: str | None = None) -> None:
    if field is not None:
        click.echo(_bare(fields[_pick(field, list(fields))]))
        return
    if as_json:
        click.echo(json.dumps({k: plain(v) for k, v in fields.items()}, indent=2))
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in fields.items():
        table.add_row(key.replace("_", " "), text(value))
    _console().print(table)


def _pick(field: str, names: list[str]) -> str:
    wanted = field.strip().lower().replace("-", "_")
    if wanted not in names:
        raise click.UsageError(f"--field {field!r}: this command's fields are {', '.join(names)}")
    return wanted


def _bare(value: Any) -> str:
    """A value on its own line: text as is, anything structured as compact JSON."""
    shown = plain(value)
    if isinstance(shown, str):
        return shown
    return json.dumps(shown)


def _console() -> Any:
    """A console as wide as the terminal; piped output gets room for 32-byte ids on one line."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)
