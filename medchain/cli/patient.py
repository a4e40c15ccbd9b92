"""``medchain patient``: (being ported from the single-file CLI; see /work/tmp/old_cli.py)."""

from __future__ import annotations

import click


@click.group()
def patient() -> None:
    """(commands being added)"""
