"""The medchain exception hierarchy: every error the package raises derives from MedChainError."""

from __future__ import annotations

from collections.abc import Sequence


class MedChainError(Exception):
    """Root of every error raised by medchain. Its message is meant for the user as it stands."""


class ConfigurationError(MedChainError):
    """A setting, file or argument given to medchain is missing or malformed."""


class ArtifactError(ConfigurationError):
    """Compiled contract artifacts are missing or unreadable (run `make build`)."""


class ManifestError(ConfigurationError):
    """A deployment manifest is missing, malformed or belongs to another chain."""


class ChainError(MedChainError):
    """The chain could not be reached or answered in an unexpected way."""


class TransactionFailed(ChainError):
    """A transaction was mined but failed, or could not be sent."""


class ContractRevert(MedChainError):
    """A contract rejected a call with one of its custom errors.

    Attributes:
        error: The Solidity error name, for example ``RegistryNotActiveMember``.
        args: The decoded error arguments, in declaration order.
    """

    def __init__(self, error: str, args: Sequence[object] = (), contract: str | None = None) -> None:
        self.error = error
        self.args_ = tuple(args)
        self.contract = contract
        shown = ", ".join(_show(a) for a in self.args_)
        where = f"{contract} rejected the call: " if contract else "the contract rejected the call: "
        super().__init__(f"{where}{error}({shown})")


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
