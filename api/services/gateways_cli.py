"""`cityops gateways revoke ID` (and `cityops stack revoke-gateway ID`) through the same
onboarding service as `POST /v1/gateways/{id}/revoke` (issue #22, item 12): the broker drops
the gateway, the registry records `revoked_at`, its retained config is cleared, and the audit
log names the person at the terminal. Before, the CLI only edited the broker's accounts and
the registry went on showing the gateway as active.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import uuid
from pathlib import Path

import typer

from cityops.errors import BrokerUnavailable, NotFound
from cityops.settings import Settings

app = typer.Typer(help="Gateways in the registry.", no_args_is_help=True)


class OneShotPublisher:
    """What onboarding needs of the API's MQTT link, for a command that publishes once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                      timeout_s: float = 5.0) -> None:
        from cityops.mqtt import MqttConnection
        from cityops.tls import service_tls_context

        s = self.settings
        conn = MqttConnection(s.mqtt_url, client_id=f"cli-{uuid.uuid4().hex[:12]}",
                              username=s.api_mqtt_username,
                              password=s.api_mqtt_password.get_secret_value(),
                              tls_context=service_tls_context(s, "api"))
        try:
            await conn.connect(timeout_s)
            await asyncio.wait_for(conn.publish(topic, payload, qos=1, retain=retain), timeout_s)
        except TimeoutError as err:
            raise BrokerUnavailable(f"the broker did not accept {topic} in {timeout_s}s") from err
        finally:
            await conn.close()


async def revoke(settings: Settings, gateway: str, broker_state_dir: Path) -> bool:
    """Revoke through onboarding; True when the registry knew the gateway, False when only
    the broker had an account for it (`stack add-gateway` without registering)."""
    from psycopg_pool import AsyncConnectionPool

    from api.middleware import write_audit
    from api.services.broker_accounts import LocalMosquitto
    from api.services.gateways import Onboarding

    credentials = LocalMosquitto(broker_state_dir, settings.topic_root)
    async with AsyncConnectionPool(settings.database_url.get_secret_value(), min_size=1,
                                   max_size=2, open=False) as pool:
        onboarding = Onboarding(settings, pool, OneShotPublisher(settings), credentials)
        try:
            await onboarding.revoke(gateway)
        except NotFound:
            await credentials.revoke(gateway)  # NotFound again when the broker lacks it too
            return False
        await write_audit(
            pool, actor=getpass.getuser(), actor_kind="cli", role=None,
            action="cli gateways revoke", target=f"/v1/gateways/{gateway}",
            source=socket.gethostname(), outcome="ok", status=None,
            detail={"gateway": gateway},
        )
    return True


def revoke_and_say(gateway: str, broker_state_dir: Path | None = None) -> None:
    from cityops.logging import configure_logging
    from cityops.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    state = broker_state_dir or settings.broker_state_dir or settings.state_dir / "broker"
    if asyncio.run(revoke(settings, gateway, state)):
        typer.echo(f"gateway {gateway} revoked (registry, broker and retained config)")
    else:
        typer.echo(f"gateway {gateway} revoked on the broker (it is not in the registry)")


@app.command("revoke")
def revoke_command(gateway: str) -> None:
    """Refuse the gateway's logins, drop its connection, mark it revoked in the registry."""
    revoke_and_say(gateway)
