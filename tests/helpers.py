"""Assertion helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from brownie.exceptions import VirtualMachineError


def _norm(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return str(value).lower()
    if hasattr(value, "address"):
        value = value.address
    return str(value).lower()


@contextmanager
def reverts(error: str, *args: object) -> Iterator[None]:
    """Asserts that the block reverts with custom error ``error`` and, if given, exactly ``args``.

    brownie decodes custom errors into ``revert_msg`` as ``Name: arg1, arg2``.
    """
    with pytest.raises(VirtualMachineError) as info:
        yield
    message = info.value.revert_msg or ""
    name, _, rest = message.partition(":")
    assert name.strip() == error, f"expected {error}, got {message!r}"
    if args:
        got = [part.strip().lower() for part in rest.split(",")] if rest.strip() else []
        assert got == [_norm(a) for a in args], f"{error} arguments: expected {args}, got {rest.strip()!r}"
