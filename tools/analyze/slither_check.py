"""Run Slither over MedChain's contracts; fail on every finding the triage file does not accept.

Run by `make slither` (part of `make analyze` and `make test`) with the Python of .venv-slither,
which tools/setup/slither.sh creates from tools/setup/slither-requirements.txt:

    .venv-slither/bin/python tools/analyze/slither_check.py

How it compiles. `slither . --compile-force-framework brownie --brownie-ignore-compile` runs no
compiler, but it cannot analyse this project: brownie writes one JSON per *contract* into
build/contracts, so a source file that declares none (OpenZeppelin's re-export
`interfaces/IERC20.sol`, imported by `IERC1363.sol`) has no AST there, and crytic-compile never
reads build/interfaces; slither then stops with "node_modules/@openzeppelin/contracts/interfaces/
IERC20.sol does not exist". So this script writes one solc standard-JSON input holding every .sol
file under contracts/ and interfaces/ with the compiler settings of brownie-config.yaml (version,
optimizer, EVM version, remappings), and slither compiles it through the project's offline
compiler bridge tools/solc/solc-v<version> (npm solc-js): nothing is downloaded.

Policy (docs/static-analysis.md):
- every detector runs except the ones listed under [[exclude]] in the triage file, each with why;
- a finding whose primary element lies in node_modules (OpenZeppelin) is not ours and is only
  counted; every other finding, of any severity, must match an [[accept]] entry of the triage
  file (same detector, same place, same number of findings there), each with why;
- an [[accept]] entry that matches nothing any more is an error too, so the file stays true.
Each problem is one line on stderr; the exit code is 0 only when there is none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = Path("tools/analyze/slither-triage.toml")
OUT = Path("build/static-analysis")
SOURCE_DIRS = ("contracts", "interfaces")
DEPENDENCY_DIR = "node_modules/"
IMPACT_ORDER = {"High": 0, "Medium": 1, "Low": 2, "Informational": 3, "Optimization": 4}


class CheckError(Exception):
    """A problem that stops the check before findings can be compared (one line)."""


@dataclass(frozen=True)
class Finding:
    detector: str
    impact: str
    confidence: str
    where: str
    location: str
    detail: str

    def line(self) -> str:
        detail = f" at `{self.detail}`" if self.detail else ""
        return f"{self.impact} {self.detector}: {self.where}{detail} ({self.location})"


@dataclass(frozen=True)
class Acceptance:
    detector: str
    where: str
    count: int
    impact: str | None


# ─── Compiler input ──────────────────────────────────────────────────────────────────────────


def standard_json_input() -> tuple[dict[str, Any], str]:
    """The solc standard-JSON input brownie would compile, and the solc version it pins."""
    config_path = ROOT / "brownie-config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckError(f"cannot read {config_path.name}: {err}") from err
    compiler = config.get("compiler") or {}
    solc = compiler.get("solc") or {}
    version = str(solc.get("version") or "")
    if not version:
        raise CheckError("brownie-config.yaml pins no compiler.solc.version")
    remappings = solc.get("remappings") or []
    if isinstance(remappings, str):
        remappings = [remappings]
    optimizer = solc.get("optimizer") or {"enabled": False}
    sources = sorted(
        path.relative_to(ROOT).as_posix() for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.sol")
    )
    if not sources:
        raise CheckError(f"no .sol files under {' or '.join(SOURCE_DIRS)}")
    settings: dict[str, Any] = {
        "remappings": [str(r) for r in remappings],
        "optimizer": {"enabled": bool(optimizer.get("enabled")), "runs": int(optimizer.get("runs", 200))},
        "outputSelection": {
            "*": {
                "*": [
                    "abi",
                    "evm.bytecode.object",
                    "evm.bytecode.sourceMap",
                    "evm.deployedBytecode.object",
                    "evm.deployedBytecode.sourceMap",
                    "userdoc",
                    "devdoc",
                ],
                "": ["ast"],
            }
        },
    }
    if compiler.get("evm_version"):
        settings["evmVersion"] = str(compiler["evm_version"])
    document = {"language": "Solidity", "sources": {s: {"urls": [s]} for s in sources}, "settings": settings}
    return document, version


# ─── Running slither ─────────────────────────────────────────────────────────────────────────


def run_slither(excluded: list[str]) -> dict[str, Any]:
    document, version = standard_json_input()
    bridge = ROOT / "tools" / "solc" / f"solc-v{version}"
    if not os.access(bridge, os.X_OK):
        raise CheckError(f"no offline compiler for solc {version}: {bridge.relative_to(ROOT)} is missing")
    out = ROOT / OUT
    out.mkdir(parents=True, exist_ok=True)
    input_path = out / "standard-input.json"
    input_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    report = out / "slither.json"
    log = out / "slither.log"
    report.unlink(missing_ok=True)  # slither refuses to overwrite its JSON output
    command = [
        str(Path(sys.executable).parent / "slither"),
        input_path.relative_to(ROOT).as_posix(),
        "--compile-force-framework",
        "solc-json",
        "--solc",
        str(bridge),
        "--json",
        report.relative_to(ROOT).as_posix(),
        "--disable-color",
        "--fail-none",
    ]
    if excluded:
        command += ["--exclude", ",".join(excluded)]
    with log.open("w", encoding="utf-8") as log_file:
        completed = subprocess.run(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, check=False)
    log_hint = f"full output in {log.relative_to(ROOT)}"
    if not report.is_file():
        reason = f"slither exited {completed.returncode} without a report: {_last_line(log)}"
        raise CheckError(f"{reason}; {log_hint}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    if not data.get("success"):
        reason = _reason(str(data.get("error")))
        raise CheckError(f"slither could not analyse the contracts: {reason}; {log_hint}")
    return data


def _reason(error: str) -> str:
    """The one line of a slither/crytic-compile error that says what went wrong."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    bridge = next((line for line in lines if line.startswith("solc bridge:")), None)
    if bridge:
        return bridge
    for i, line in enumerate(lines):
        if re.match(r"^[A-Za-z]+Error: ", line):  # solc's first diagnostic and where it is
            message = re.sub(r"^([A-Za-z]+Error): \1: ", r"\1: ", line)
            where = next((w[4:].rstrip(":") for w in lines[i + 1 : i + 3] if w.startswith("--> ")), "")
            return f"{message} at {where}" if where else message
    meaningful = [line for line in lines if line.rstrip(":") != "Invalid compilation"]
    return meaningful[0] if meaningful else "unknown error"


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


# ─── Findings ────────────────────────────────────────────────────────────────────────────────


def qualified_name(element: dict[str, Any]) -> str:
    """Contract.function(signature)[.local] — the name slither prints, without line numbers."""
    kind = element.get("type")
    name = str(element.get("name", ""))
    fields = element.get("type_specific_fields") or {}
    parent = fields.get("parent")
    if kind == "node":  # a statement: named by its function
        return qualified_name(parent) if parent else name
    if kind == "pragma":
        return f"pragma solidity {name}"
    if kind == "function":
        name = str(fields.get("signature") or name)
    return f"{qualified_name(parent)}.{name}" if parent else name


def _location(element: dict[str, Any]) -> str:
    mapping = element.get("source_mapping") or {}
    lines = mapping.get("lines") or []
    path = mapping.get("filename_relative", "?")
    return f"{path}#{lines[0]}" if lines else path


def findings(data: dict[str, Any]) -> tuple[list[Finding], int]:
    """Our findings, and how many were left out because they are about node_modules."""
    ours: list[Finding] = []
    dependency = 0
    for result in (data.get("results") or {}).get("detectors") or []:
        elements = result.get("elements") or []
        primary = elements[0] if elements else {}
        path = (primary.get("source_mapping") or {}).get("filename_relative", "")
        if path.startswith(DEPENDENCY_DIR):
            dependency += 1
            continue
        statement = next((e for e in elements[1:] if e.get("type") == "node"), None)
        first_line = str(result.get("description", "")).strip().splitlines()
        ours.append(
            Finding(
                detector=str(result["check"]),
                impact=str(result["impact"]),
                confidence=str(result["confidence"]),
                where=qualified_name(primary) if primary else (first_line[0] if first_line else "?"),
                location=_location(statement or primary),
                detail=str(statement.get("name", "")) if statement else "",
            )
        )
    ours.sort(key=lambda f: (IMPACT_ORDER.get(f.impact, 9), f.detector, f.where, f.location))
    return ours, dependency


# ─── Triage file ─────────────────────────────────────────────────────────────────────────────


def load_triage() -> tuple[list[str], list[Acceptance]]:
    path = ROOT / TRIAGE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise CheckError(f"cannot read {TRIAGE}: {err}") from err
    unknown = set(data) - {"exclude", "accept"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise CheckError(f"{TRIAGE}: unknown table(s) {names}; use [[exclude]] or [[accept]]")
    excluded: list[str] = []
    for entry in data.get("exclude", []):
        _require(entry, {"detector", "why"}, set(), "[[exclude]]")
        excluded.append(entry["detector"])
    accepted: list[Acceptance] = []
    seen: set[tuple[str, str]] = set()
    for entry in data.get("accept", []):
        _require(entry, {"detector", "where", "why"}, {"count", "impact"}, "[[accept]]")
        count = entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise CheckError(f"{TRIAGE}: count must be a positive integer in [[accept]] {entry['where']}")
        key = (entry["detector"], entry["where"])
        if key in seen:
            raise CheckError(f"{TRIAGE}: {key[0]} in {key[1]} is accepted twice; use one entry with a count")
        seen.add(key)
        accepted.append(Acceptance(entry["detector"], entry["where"], count, entry.get("impact")))
    return excluded, accepted


def _require(entry: dict[str, Any], required: set[str], optional: set[str], table: str) -> None:
    label = entry.get("where") or entry.get("detector") or "?"
    missing = sorted(k for k in required if not str(entry.get(k, "")).strip())
    if missing:
        raise CheckError(f"{TRIAGE}: {table} {label} lacks {', '.join(missing)} (every entry says why)")
    extra = sorted(set(entry) - required - optional)
    if extra:
        raise CheckError(f"{TRIAGE}: {table} {label} has unknown key(s) {', '.join(extra)}")


def compare(found: list[Finding], accepted: list[Acceptance]) -> list[str]:
    """One line per finding the triage does not cover and per entry that covers nothing."""
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in found:
        groups[(finding.detector, finding.where)].append(finding)
    by_key = {(a.detector, a.where): a for a in accepted}
    problems: list[str] = []
    for key, group in groups.items():
        acceptance = by_key.get(key)
        count = acceptance.count if acceptance else 0
        if acceptance and acceptance.impact and acceptance.impact != group[0].impact:
            problems.append(
                f"triage says {acceptance.impact} for {key[0]} in {key[1]} but slither says "
                f"{group[0].impact}; re-check the reason and fix impact in {TRIAGE}"
            )
        if len(group) > count:
            note = f" ({len(group)} here, the triage accepts {count})" if count else ""
            problems += [f"not triaged: {f.line()}{note}" for f in group[count:]]
        elif len(group) < count:
            problems.append(
                f"triage accepts {count} {key[0]} finding(s) in {key[1]} but slither reports {len(group)}; "
                f"lower its count in {TRIAGE}"
            )
    for acceptance in accepted:
        if (acceptance.detector, acceptance.where) not in groups:
            problems.append(
                f"triage entry matches nothing now: {acceptance.detector} in {acceptance.where}; "
                f"remove it from {TRIAGE}"
            )
    return problems


def main() -> int:
    try:
        excluded, accepted = load_triage()
        found, dependency = findings(run_slither(excluded))
    except CheckError as err:
        print(f"slither: {err}", file=sys.stderr)
        return 1
    problems = compare(found, accepted)
    for problem in problems:
        print(f"slither: {problem}", file=sys.stderr)
    if problems:
        print(
            f"slither: {len(problems)} problem(s); fix each finding, or accept it with a reason in {TRIAGE} "
            f"(report: {OUT}/slither.log)",
            file=sys.stderr,
        )
        return 1
    print(
        f"analyze: slither clean: {len(found)} finding(s) in {' and '.join(SOURCE_DIRS)}, each accepted in "
        f"{TRIAGE}; {len(excluded)} detector(s) excluded there; {dependency} in node_modules ignored"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
