"""Compiled contract artifacts (ABI and bytecode) as brownie writes them to ``build/contracts``.

The SDK needs only these JSON files, not brownie itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from medchain import settings
from medchain.errors import ArtifactError

ARTIFACTS_ENV = settings.ARTIFACTS.name
_REPO_BUILD = Path(__file__).resolve().parent.parent / "build" / "contracts"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def default_artifacts_dir() -> Path:
    """Where artifacts are looked for: ``$MEDCHAIN_ARTIFACTS``, else the repository's build folder."""
    env = settings.ARTIFACTS.get()
    return Path(env).expanduser() if env else _REPO_BUILD


class Artifacts:
    """Reads artifacts lazily from a folder of ``<ContractName>.json`` files."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or default_artifacts_dir()).resolve()
        self._cache: dict[str, Artifact] = {}

    def get(self, name: str) -> Artifact:
        """Returns the artifact of contract ``name``.

        Raises:
            ArtifactError: the file is missing or is not a compiled contract.
        """
        if name in self._cache:
            return self._cache[name]
        path = self.directory / f"{name}.json"
        if not path.is_file():
            raise ArtifactError(
                f"no compiled artifact for {name} in {self.directory}; run `make build` "
                f"(or set {ARTIFACTS_ENV} to the folder holding {name}.json)"
            )
        try:
            data = json.loads(path.read_text())
            artifact = Artifact(name=name, abi=list(data["abi"]), bytecode=str(data.get("bytecode", "")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"{path} is not a readable contract artifact ({exc})") from exc
        self._cache[name] = artifact
        return artifact

    def error_selectors(self, names: list[str]) -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
        """Maps 4-byte selectors of the custom errors declared in ``names`` to (name, inputs)."""
        table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        for name in names:
            for entry in self.get(name).abi:
                if entry.get("type") == "error":
                    inputs = list(entry.get("inputs", []))
                    signature = f"{entry['name']}({','.join(abi_type(i) for i in inputs)})"
                    table[bytes(Web3.keccak(text=signature)[:4])] = (str(entry["name"]), inputs)
        return table


def abi_type(entry: dict[str, Any]) -> str:
    """The canonical ABI type of a parameter entry, expanding tuples."""
    if str(entry["type"]).startswith("tuple"):
        inner = ",".join(abi_type(c) for c in entry["components"])
        return f"({inner}){str(entry['type'])[5:]}"
    return str(entry["type"])
