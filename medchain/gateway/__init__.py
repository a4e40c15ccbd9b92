"""The custodian gateway: an authenticated HTTP service releasing record keys the chain permits.

``service`` holds the rules (framework-free), ``app`` the HTTP service, ``client`` the reader's
side, ``protocol`` the EIP-712 challenge both sides sign and verify.
"""

from medchain.gateway.client import GatewayClient
from medchain.gateway.service import (
    GatewayError,
    GatewayRelease,
    GatewayService,
    GatewaySettings,
    ReleaseLog,
    verify_log,
)

__all__ = [
    "GatewayClient",
    "GatewayError",
    "GatewayRelease",
    "GatewayService",
    "GatewaySettings",
    "ReleaseLog",
    "verify_log",
]
