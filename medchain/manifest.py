"""The deployment manifest: which contracts a deployment has, where, since which block.

``medchain deploy`` (and :func:`medchain.deploy.deploy_suite`) writes it; every other command
finds the contracts through it (:class:`medchain.suite.Suite`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medchain import settings
from medchain.errors import ManifestError

MANIFEST_FORMAT = "medchain-deployment/1"


def default_manifest_path(chain_id: int) -> Path:
    """``$MEDCHAIN_MANIFEST`` if set, else ``$MEDCHAIN_HOME/deployments/<chain_id>.json``."""
    override = settings.MANIFEST.get()
    return Path(override).expanduser() if override else settings.home() / "deployments" / f"{chain_id}.json"


@dataclass(frozen=True)
class ContractRecord:
    address: str
    tx_hash: str
    block: int


@dataclass(frozen=True)
class Deployment:
    """A deployed suite, as recorded in its manifest."""

    chain_id: int
    deployer: str
    deploy_block: int
    deployed_at: int
    abi_source: str
    contracts: dict[str, ContractRecord]
    settings: dict[str, Any] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def address_of(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise ManifestError(
                f"the manifest has no {name}; deployed: {', '.join(self.contracts)}"
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Deployment:
        try:
            data = json.loads(text)
            if data.get("format") != MANIFEST_FORMAT:
                raise ManifestError(
                    f"{source} is not a {MANIFEST_FORMAT} manifest (format {data.get('format')!r})"
                )
            contracts = {k: ContractRecord(**v) for k, v in data["contracts"].items()}
            return cls(
                chain_id=int(data["chain_id"]),
                deployer=str(data["deployer"]),
                deploy_block=int(data["deploy_block"]),
                deployed_at=int(data["deployed_at"]),
                abi_source=str(data["abi_source"]),
                contracts=contracts,
                settings=dict(data.get("settings", {})),
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{source} is not a readable deployment manifest ({exc})") from exc

    def save(self, path: Path) -> None:
        """Writes the manifest atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.is_file():
            raise ManifestError(
                f"no deployment manifest at {path}; deploy first (`make deploy` or `medchain deploy`)"
            )
        return cls.from_json(path.read_text(), source=str(path))
