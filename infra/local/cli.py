"""`cityops stack ...`: the local PostgreSQL/TimescaleDB cluster and Mosquitto broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from cityops.errors import PlatformError
from infra.local import stack

app = typer.Typer(
    help="Local stack: PostgreSQL 15 + TimescaleDB on 127.0.0.1:5433 and Mosquitto on "
    "127.0.0.1:1884, state under $CITYOPS_STATE_DIR (default ./var).",
    no_args_is_help=True,
)


@contextmanager
def _errors_exit() -> Iterator[None]:
    try:
        yield
    except PlatformError as err:
        typer.echo(f"error: {err.detail}", err=True)
        raise typer.Exit(1) from err


def _show(parts: list[stack.Part]) -> bool:
    for part in parts:
        typer.echo(f"{part.name:<12} {'up' if part.ok else 'DOWN':<5} {part.detail}")
    return all(part.ok for part in parts)


@app.command()
def up(ha: bool = typer.Option(False, "--ha", help="a database that fails over instead of "
                               "the single cluster: etcd + two Patroni members on 5441/5442 "
                               "(docs/operations.md)")) -> None:
    """Install what is missing, then start the cluster and the broker; safe to repeat."""
    from infra.ha import stack as ha_stack

    with _errors_exit():
        state_dir = stack.state_dir_from_env()
        parts = ha_stack.up_ha(state_dir) if ha else stack.up(state_dir)
    if not _show(parts):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the `cityops` cluster and the broker this stack started (nothing else)."""
    from infra.ha import stack as ha_stack

    with _errors_exit():
        ha_stack.down_ha(stack.state_dir_from_env())
        stack.down(stack.state_dir_from_env())


@app.command()
def status() -> None:
    """Show each part's state; exit status 1 when any part is down."""
    from infra.ha import stack as ha_stack

    with _errors_exit():
        parts = stack.status(stack.state_dir_from_env())
        ha_parts = ha_stack.status_ha(stack.state_dir_from_env())
        if ha_parts:  # the HA members replace the single cluster
            parts = [p for p in parts if p.name != "postgres"] + ha_parts
    if not _show(parts):
        raise typer.Exit(1)


@app.command("add-gateway")
def add_gateway(gateway_id: str, certificate: bool = typer.Option(
        False, "--certificate", help="also a client certificate of the local CA, for the "
        "broker's TLS listener on 8884 (its paths are printed)")) -> None:
    """Create broker credentials for a gateway and print its password (shown only this once)."""
    with _errors_exit():
        password = stack.add_gateway(stack.state_dir_from_env(), gateway_id, certificate)
    typer.echo(password)


@app.command("revoke-gateway")
def revoke_gateway(gateway_id: str) -> None:
    """Revoke a gateway as the API does: broker access removed (a connected gateway is
    disconnected at once), the registry marks it revoked, its retained config is cleared."""
    from api.services.gateways_cli import revoke_and_say

    with _errors_exit():
        revoke_and_say(gateway_id,
                       stack.broker_for(stack.state_dir_from_env()).state_dir.resolve())


if __name__ == "__main__":
    app()
