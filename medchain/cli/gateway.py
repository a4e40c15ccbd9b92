"""``medchain gateway``: a custodian's gateway that releases record keys to permitted readers."""

from __future__ import annotations

from pathlib import Path

import click

from medchain.cli._context import Context
from medchain.cli._options import ADDRESS, store_option, vault_option
from medchain.gateway import GatewayService, GatewaySettings, ReleaseLog, verify_log
from medchain.gateway.app import serve
from medchain.store import LocalFolderStore


@click.group()
def gateway() -> None:
    """A custodian's gateway: releases record keys to readers the chain permits."""


@gateway.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="TCP port [default: the port of $MEDCHAIN_GATEWAY, else 8610].",
)
@click.option(
    "--public-url", default=None, help="URL readers use (signed into challenges; default from host:port)."
)
@vault_option
@store_option
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append-only log of releases and refusals [default: $MEDCHAIN_HOME/gateway-releases.jsonl].",
)
@click.option(
    "--access-window",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Seconds an access counts.",
)
@click.option(
    "--rate-per-client",
    type=click.FloatRange(min=0.1),
    default=GatewaySettings.rate_per_client,
    show_default=True,
    help="Requests per second per client address (burst twice that).",
)
@click.option(
    "--rate-per-reader",
    type=click.FloatRange(min=0.1),
    default=GatewaySettings.rate_per_reader,
    show_default=True,
    help="Releases per second per authenticated reader (burst twice that).",
)
@click.pass_obj
def gateway_serve(
    obj: Context,
    host: str,
    port: int | None,
    public_url: str | None,
    vault_path: Path | None,
    store_path: Path | None,
    log_path: Path | None,
    access_window: int,
    rate_per_client: float,
    rate_per_reader: float,
) -> None:
    """Serve this custodian's records over HTTP; --from is the custodian (its key decrypts)."""
    custodian = obj.local_key("the gateway")
    port = port or default_gateway_port()
    url = (public_url or f"http://{host}:{port}").rstrip("/")
    log = log_path or obj.home / "gateway-releases.jsonl"
    service = GatewayService(
        obj.suite,
        LocalFolderStore(store_path or obj.home / "store"),
        obj.vault(vault_path),
        bytes(custodian.key),
        GatewaySettings(
            public_url=url,
            access_window=access_window,
            rate_per_client=rate_per_client,
            burst_per_client=max(1, round(2 * rate_per_client)),
            rate_per_reader=rate_per_reader,
            burst_per_reader=max(1, round(2 * rate_per_reader)),
        ),
        log=ReleaseLog(log, signing_key=bytes(custodian.key)),
    )
    obj.note(
        f"gateway of custodian {service.custodian} on chain {service.chain_id} serving at {url} "
        f"(log {log}); Ctrl-C stops it"
    )
    serve(service, host, port)


DEFAULT_PORT = 8610


def default_gateway_url() -> str:
    """$MEDCHAIN_GATEWAY, else the gateway `gateway serve` starts by default on this machine."""
    from medchain import settings

    return settings.GATEWAY.get() or f"http://127.0.0.1:{DEFAULT_PORT}"


def default_gateway_port() -> int:
    from urllib.parse import urlsplit

    return urlsplit(default_gateway_url()).port or DEFAULT_PORT


@gateway.command("verify-log")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--custodian",
    type=ADDRESS,
    default=None,
    help="The custodian whose gateway wrote the log: every line must carry its signature.",
)
def gateway_verify_log(path: Path, custodian: str | None) -> None:
    """Check a gateway release log's hash chain (detects edited, removed or reordered lines) and,
    with --custodian, that the custodian's key signed every line (detects a rewritten log)."""
    from medchain.errors import ConfigurationError

    try:
        count = verify_log(path, custodian)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path} is not a readable release log ({exc})") from None
    signed = (
        f", every line signed by {custodian}" if custodian else " (add --custodian to check who wrote it)"
    )
    click.echo(f"{path}: {count} entries, hash chain intact{signed}")
