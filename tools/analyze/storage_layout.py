"""Compare every contract's storage layout and ABI between a git revision and the working tree.

A refactor of the contracts (moving formulas into libraries, renaming privates) must not move a
single storage variable, and usually must not change the ABI. This script proves it:

    .venv/bin/python tools/analyze/storage_layout.py                 # working tree against HEAD
    .venv/bin/python tools/analyze/storage_layout.py --base main     # ... against another revision

It compiles both trees (every .sol under contracts/ and interfaces/, the revision's taken with
`git archive`) with the settings of each tree's brownie-config.yaml through the offline compiler
bridge tools/solc/solc-v<version> (npm solc-js), asking solc for `storageLayout`, `abi` and the
deployed bytecode. A layout is compared as text: each variable's slot, offset, label and type, the
type written out in full (struct members with their own slots and offsets, mapping keys and
values) without the AST ids that solc puts in type names, which change whenever a file does.

Prints one line per contract: layout same/CHANGED, ABI same/CHANGED, and whether the runtime code
(without its metadata trailer) is identical or its size before -> after; then the differences. A
contract only in one tree is listed as new or removed. Exit code 0 when no contract present in
both trees changed its layout or ABI (`--allow-abi-change` ignores ABI changes), 1 otherwise, 2
when a tree cannot be compiled.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("contracts", "interfaces")
AST_ID = re.compile(r"\)\d+(_storage|_memory_ptr|_calldata_ptr)?")


class LayoutError(Exception):
    """A tree that cannot be compiled (one line)."""


@dataclass(frozen=True)
class Compiled:
    """What is compared of one contract."""

    layout: list[str]
    abi: list[str]
    runtime: str
    """The deployed bytecode without its metadata (the CBOR trailer that hashes the sources)."""

    @property
    def runtime_size(self) -> int:
        return len(self.runtime) // 2


# ─── Compiling a tree ────────────────────────────────────────────────────────────────────────


def standard_input(tree: Path) -> tuple[dict[str, Any], str]:
    """The solc standard-JSON input for ``tree`` with its brownie-config.yaml settings, and the version."""
    config = yaml.safe_load((tree / "brownie-config.yaml").read_text(encoding="utf-8")) or {}
    compiler = config.get("compiler") or {}
    solc = compiler.get("solc") or {}
    version = str(solc.get("version") or "")
    if not version:
        raise LayoutError(f"{tree}/brownie-config.yaml pins no compiler.solc.version")
    remappings = solc.get("remappings") or []
    if isinstance(remappings, str):
        remappings = [remappings]
    optimizer = solc.get("optimizer") or {"enabled": False}
    sources = sorted(p.relative_to(tree).as_posix() for d in SOURCE_DIRS for p in (tree / d).rglob("*.sol"))
    settings: dict[str, Any] = {
        "remappings": [str(r) for r in remappings],
        "optimizer": {"enabled": bool(optimizer.get("enabled")), "runs": int(optimizer.get("runs", 200))},
        "outputSelection": {"*": {"*": ["abi", "storageLayout", "evm.deployedBytecode.object"]}},
    }
    if compiler.get("evm_version"):
        settings["evmVersion"] = str(compiler["evm_version"])
    sources_json = {s: {"content": (tree / s).read_text(encoding="utf-8")} for s in sources}
    return {"language": "Solidity", "sources": sources_json, "settings": settings}, version


def compile_tree(tree: Path) -> dict[str, Compiled]:
    """Every contract compiled from ``tree``, keyed ``path:Name`` (only sources under SOURCE_DIRS)."""
    document, version = standard_input(tree)
    bridge = ROOT / "tools" / "solc" / f"solc-v{version}"
    if not os.access(bridge, os.X_OK):
        raise LayoutError(f"no offline compiler for solc {version}: {bridge} is missing")
    completed = subprocess.run(
        [str(bridge), "--standard-json", "--base-path", str(tree)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        cwd=tree,
        check=False,
    )
    if completed.returncode != 0:
        raise LayoutError(completed.stderr.strip() or f"the compiler bridge exited {completed.returncode}")
    output = json.loads(completed.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise LayoutError(f"{tree} does not compile: {errors[0].get('formattedMessage', errors[0]).strip()}")
    result: dict[str, Compiled] = {}
    for source, contracts in output.get("contracts", {}).items():
        if not source.startswith(tuple(f"{d}/" for d in SOURCE_DIRS)):
            continue
        for name, data in contracts.items():
            storage = data.get("storageLayout") or {"storage": [], "types": {}}
            result[f"{source}:{name}"] = Compiled(
                layout=render_layout(storage),
                abi=sorted(json.dumps(entry, sort_keys=True) for entry in data.get("abi", [])),
                runtime=without_metadata(data.get("evm", {}).get("deployedBytecode", {}).get("object", "")),
            )
    return result


def archive_tree(revision: str, into: Path) -> Path:
    """The revision's contracts, interfaces and brownie-config.yaml, extracted under ``into``."""
    completed = subprocess.run(
        ["git", "archive", "--format=tar", revision, *SOURCE_DIRS, "brownie-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise LayoutError(f"git archive {revision}: {completed.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=BytesIO(completed.stdout)) as archive:
        archive.extractall(into, filter="data")
    # Imports such as @openzeppelin/... resolve through the remapping to the project's node_modules.
    (into / "node_modules").symlink_to(ROOT / "node_modules")
    return into


def without_metadata(code: str) -> str:
    """Hex runtime code without solc's metadata trailer (its last two bytes give its length)."""
    if len(code) < 4:
        return code
    return code[: -(int(code[-4:], 16) * 2 + 4)]


# ─── Rendering a layout ──────────────────────────────────────────────────────────────────────


def render_layout(storage: dict[str, Any]) -> list[str]:
    """One line per state variable: slot, offset, label and the type written out in full."""
    types: dict[str, Any] = storage.get("types") or {}
    return [
        f"slot {v['slot']} +{v['offset']} {v['label']}: {render_type(v['type'], types)}"
        for v in storage.get("storage", [])
    ]


def render_type(type_id: str, types: dict[str, Any]) -> str:
    entry = types.get(type_id, {})
    label = AST_ID.sub(")", str(entry.get("label", type_id)))
    size = entry.get("numberOfBytes", "?")
    encoding = entry.get("encoding")
    if encoding == "mapping":
        return f"mapping({render_type(entry['key'], types)} => {render_type(entry['value'], types)})"
    if "members" in entry:
        members = ", ".join(
            f"{m['label']}: {render_type(m['type'], types)} @{m['slot']}+{m['offset']}"
            for m in entry["members"]
        )
        return f"{label} {{{members}}} [{size} bytes]"
    if "base" in entry:
        return f"{label} of {render_type(entry['base'], types)} [{encoding}, {size} bytes]"
    return f"{label} [{size} bytes]"


# ─── Comparing ───────────────────────────────────────────────────────────────────────────────


def compare(before: dict[str, Compiled], after: dict[str, Compiled], allow_abi_change: bool) -> int:
    changed = 0
    details: list[str] = []
    width = max(len(name) for name in {*before, *after})
    print(f"{'contract':<{width}}  {'storage layout':<16}{'ABI':<10}runtime code (bytes, without metadata)")
    for name in sorted({*before, *after}):
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            print(f"{name:<{width}}  {'new' if old is None else 'removed'}")
            continue
        layout_same = old.layout == new.layout
        abi_same = old.abi == new.abi
        slots = f"same ({len(new.layout)} vars)" if layout_same else "CHANGED"
        abi = "same" if abi_same else "CHANGED"
        code = "identical" if old.runtime == new.runtime else f"{old.runtime_size} -> {new.runtime_size}"
        print(f"{name:<{width}}  {slots:<16}{abi:<10}{code}")
        if not layout_same:
            changed += 1
            diff = difflib.unified_diff(old.layout, new.layout, lineterm="", n=1)
            details += [f"--- {name} storage layout", *diff]
        if not abi_same:
            changed += 0 if allow_abi_change else 1
            details += [f"--- {name} ABI", *difflib.unified_diff(old.abi, new.abi, lineterm="", n=0)]
    for line in details:
        print(line)
    return 1 if changed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git revision to compare the working tree with (HEAD)")
    parser.add_argument("--allow-abi-change", action="store_true", help="report ABI changes without failing")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="storage-layout-") as tmp:
            before = compile_tree(archive_tree(args.base, Path(tmp)))
        after = compile_tree(ROOT)
    except LayoutError as err:
        print(f"storage-layout: {err}", file=sys.stderr)
        return 2
    print(f"storage layout and ABI: {args.base} -> working tree")
    return compare(before, after, args.allow_abi_change)


if __name__ == "__main__":
    sys.exit(main())
