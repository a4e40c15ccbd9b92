"""The deployment's directory: each member's GS1 identity (GLN, GS1 Company Prefix, name), off chain.

GS1 exports (:mod:`medchain.epcis`) name parties and locations by GLN, and classes and packs by
GS1 Company Prefix; the chain knows members only by address. The mapping is kept beside the
deployment manifest, one file per chain, not in the registry contract: a GLN is public master
data that a member may correct without a governance vote, and the contracts never decide on it.

``$MEDCHAIN_HOME/directory/<chain id>.json`` (written by ``medchain institution directory set``,
filled with sample GLNs by ``medchain deploy --dev-consortium``)::

    {
      "format": "medchain-directory-v1",
      "chain_id": 31337,
      "members": {
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8": {
          "name": "Acme Pharma", "gln": "9520000100009", "company_prefix": "95200001"
        }
      }
    }

Each GLN is checked with its GS1 check digit and must start with the member's GS1 Company Prefix
(6 to 12 digits; its length is what splits a GLN or GTIN into the parts of an EPC URI).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from medchain import settings
from medchain.errors import ConfigurationError
from medchain.gs1 import GS1Error, check_company_prefix, check_gln

DIRECTORY_FORMAT = "medchain-directory-v1"


class DirectoryError(ConfigurationError):
    """The directory is unreadable, malformed, or lacks an entry an export needs."""


def default_directory_path(chain_id: int) -> Path:
    """``$MEDCHAIN_HOME/directory/<chain id>.json``."""
    return settings.home() / "directory" / f"{chain_id}.json"


@dataclass(frozen=True)
class DirectoryEntry:
    """One member's GS1 identity. Construction checks the GLN's check digit and prefix.

    Raises:
        GS1Error: a malformed GLN or prefix, a wrong check digit, or a GLN outside the prefix.
    """

    address: str
    gln: str
    company_prefix: str
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", Web3.to_checksum_address(self.address))
        object.__setattr__(self, "gln", check_gln(self.gln))
        object.__setattr__(self, "company_prefix", check_company_prefix(self.company_prefix))
        if not self.gln.startswith(self.company_prefix):
            raise GS1Error(
                f"GLN {self.gln} does not start with GS1 Company Prefix {self.company_prefix}: a GLN is "
                "its company's prefix, a location reference and a check digit"
            )

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "gln": self.gln, "company_prefix": self.company_prefix}


@dataclass(frozen=True)
class Directory:
    """Every member's :class:`DirectoryEntry` on one chain."""

    chain_id: int
    entries: dict[str, DirectoryEntry] = field(default_factory=dict)

    def entry(self, address: str) -> DirectoryEntry | None:
        return self.entries.get(Web3.to_checksum_address(address))

    def require(self, address: str, role: str) -> DirectoryEntry:
        """The entry of ``address``, which an export names as ``role``.

        Raises:
            DirectoryError: no entry, saying how to add one.
        """
        found = self.entry(address)
        if found is None:
            raise DirectoryError(
                f"the directory of chain {self.chain_id} has no GLN for {address} (the {role}); add it with "
                f"`medchain institution directory set {address} --gln GLN --company-prefix PREFIX`"
            )
        return found

    def with_entry(self, entry: DirectoryEntry) -> Directory:
        return Directory(self.chain_id, {**self.entries, entry.address: entry})

    def to_json(self) -> str:
        members = {a: e.as_json() for a, e in sorted(self.entries.items())}
        data = {"format": DIRECTORY_FORMAT, "chain_id": self.chain_id, "members": members}
        return json.dumps(data, indent=2) + "\n"

    def save(self, path: Path) -> None:
        """Writes the directory whole or not at all."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(self.to_json())
            tmp.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise DirectoryError(f"cannot write the directory {path}: {exc.strerror or exc}") from None

    @classmethod
    def from_json(cls, text: str, chain_id: int, source: str) -> Directory:
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise DirectoryError(f"{source} is not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != DIRECTORY_FORMAT:
            raise DirectoryError(f"{source} is not a {DIRECTORY_FORMAT} directory")
        if data.get("chain_id") != chain_id:
            raise DirectoryError(f"{source} is the directory of chain {data.get('chain_id')}, not {chain_id}")
        members = data.get("members")
        if not isinstance(members, dict):
            raise DirectoryError(f"{source}: 'members' is not an object of address -> entry")
        entries = {}
        for address, fields in members.items():
            if not Web3.is_address(address) or not isinstance(fields, dict):
                raise DirectoryError(f"{source}: member {address!r} is not an address with an entry")
            try:
                gln, prefix = str(fields.get("gln", "")), str(fields.get("company_prefix", ""))
                entry = DirectoryEntry(address, gln, prefix, str(fields.get("name", "")))
            except GS1Error as exc:
                raise DirectoryError(f"{source}: member {address}: {exc}") from None
            entries[entry.address] = entry
        return cls(chain_id, entries)

    @classmethod
    def load(cls, path: Path, chain_id: int) -> Directory:
        """The directory at ``path``; an empty one if there is no file yet."""
        if not path.is_file():
            return cls(chain_id)
        try:
            text = path.read_text()
        except OSError as exc:
            raise DirectoryError(f"cannot read the directory {path}: {exc.strerror or exc}") from None
        return cls.from_json(text, chain_id, str(path))


SAMPLE_GS1_PREFIX = "952"
"""GS1 Prefix 952: numbers GS1 keeps for demonstrations and examples, never issued to a company."""


EXAMPLE_GTIN_PREFIX = "9506000"
"""The GS1 Company Prefix of GS1's own example GTIN 09506000134352, which the demo and the tour
commission: their manufacturer is given it, so that EPC URIs can split that GTIN."""


def sample_entry(address: str, index: int, name: str = "", prefix: str | None = None) -> DirectoryEntry:
    """A demonstration identity for local chains: GS1 Company Prefix ``952`` + 4 digits of ``index``
    (7 digits) unless ``prefix`` is given, and the GLN of its location ``00001`` with its check digit."""
    from medchain.gs1 import gln_with_check_digit

    prefix = prefix or f"{SAMPLE_GS1_PREFIX}{index:04d}"
    first12 = prefix + "00001".rjust(12 - len(prefix), "0")
    return DirectoryEntry(address, gln_with_check_digit(first12), prefix, name)


def sample_directory(chain_id: int, names: dict[str, str]) -> Directory:
    """Demonstration GLNs (:func:`sample_entry`) for every address of ``names``, in order."""
    directory = Directory(chain_id)
    for index, (address, name) in enumerate(names.items(), 1):
        directory = directory.with_entry(sample_entry(address, index, name))
    return directory
