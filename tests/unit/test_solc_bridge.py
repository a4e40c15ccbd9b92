"""The offline compiler bridge: py-solc-x and brownie see it as a native solc."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import solcx
from brownie import project
from brownie.exceptions import CompilerError

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "tools" / "solc" / "solc-v0.8.28"


def run_bridge(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BRIDGE), *args], input=stdin, capture_output=True, text=True, cwd=ROOT, check=False
    )


def standard_input(source: str) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {"Sample.sol": {"content": source}},
            "settings": {
                "remappings": ["@openzeppelin=node_modules/@openzeppelin"],
                "evmVersion": "shanghai",
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        }
    )


def test_version_output_is_native_style():
    result = run_bridge("--version")
    assert result.returncode == 0
    assert re.search(r"^Version: 0\.8\.28\+commit\.[0-9a-f]{8}", result.stdout, re.MULTILINE)
    assert solcx.wrapper.get_solc_version(BRIDGE) == solcx.wrapper.Version("0.8.28")


def test_bridge_is_registered_for_this_environment():
    assert Path(os.environ["SOLCX_BINARY_PATH"]) == BRIDGE.parent
    assert solcx.wrapper.Version("0.8.28") in solcx.get_installed_solc_versions()


def test_standard_json_compiles_a_contract():
    src = "pragma solidity 0.8.28;contract Sample{function two() external pure returns (uint8) { return 2; }}"
    result = run_bridge("--standard-json", "--allow-paths", ".", stdin=standard_input(src))
    assert result.returncode == 0
    out = json.loads(result.stdout)
    assert "errors" not in out or all(e["severity"] != "error" for e in out["errors"])
    assert len(out["contracts"]["Sample.sol"]["Sample"]["evm"]["bytecode"]["object"]) > 100


def test_import_resolves_through_openzeppelin_remapping():
    src = (
        'pragma solidity 0.8.28; import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";'
        " contract Sample is Ownable { constructor() Ownable(msg.sender) {} }"
    )
    out = solcx.compile_standard(json.loads(standard_input(src)), solc_binary=BRIDGE, allow_paths=str(ROOT))
    abi = out["contracts"]["Sample.sol"]["Sample"]["abi"]
    assert any(item.get("name") == "transferOwnership" for item in abi)
    assert "node_modules/@openzeppelin/contracts/access/Ownable.sol" in out["sources"]


def test_syntax_error_is_reported_cleanly_by_py_solc_x():
    with pytest.raises(solcx.exceptions.SolcError) as info:
        solcx.compile_standard(
            json.loads(standard_input("pragma solidity 0.8.28; contract {")), solc_binary=BRIDGE
        )
    assert "ParserError" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_syntax_error_is_a_compiler_error_in_brownie():
    with pytest.raises(CompilerError) as info:
        project.compile_source("pragma solidity 0.8.28; contract Broken { function f( }")
    assert "ParserError" in str(info.value)


def test_import_outside_allowed_paths_is_refused(tmp_path):
    secret = tmp_path / "Secret.sol"
    secret.write_text("pragma solidity 0.8.28; contract Secret {}")
    src = f'pragma solidity 0.8.28; import "{secret}"; contract Sample {{}}'
    result = run_bridge("--standard-json", "--base-path", str(ROOT), stdin=standard_input(src))
    assert result.returncode == 0
    errors = json.loads(result.stdout)["errors"]
    assert any("outside of allowed directories" in e["formattedMessage"] for e in errors)


def test_invalid_json_input_fails_with_one_line():
    result = run_bridge("--standard-json", stdin="not json")
    assert result.returncode == 1
    assert result.stderr.startswith("solc bridge: the input on stdin is not valid JSON")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_option_fails_with_one_line():
    result = run_bridge("--bin", "x.sol")
    assert result.returncode == 1
    assert "unsupported option --bin" in result.stderr


def test_no_mode_fails_with_one_line():
    result = run_bridge()
    assert result.returncode == 1
    assert "pass --version or --standard-json" in result.stderr
