"""What a refused OpenSecureChannel means to the agent: asyncua fails on the server's
ServiceFault with a bare AssertionError (seen against node-opcua, tests/interop)."""

from cityops.errors import DeviceAuthRefused, DeviceUnreachable
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.drivers.opcua.session import connect_error


def _endpoint(**extra) -> OpcUaEndpoint:
    return OpcUaEndpoint.model_validate({"protocol": "opcua", "url": "opc.tcp://127.0.0.1:4840",
                                         "auth_retry_s": 60, **extra})


def test_with_security_it_is_the_certificate_the_server_does_not_trust() -> None:
    ep = _endpoint(security_policy="Basic256Sha256", security_mode="Sign",
                   certificate="/etc/cityops/agent.der", private_key="/etc/cityops/agent.pem")
    err = connect_error(AssertionError(), "wall at opc.tcp://127.0.0.1:4840", ep)
    assert isinstance(err, DeviceAuthRefused)
    assert "does not trust the agent's certificate /etc/cityops/agent.der" in err.detail
    assert err.context["retry_after_s"] == 60


def test_without_security_it_is_an_unreachable_server() -> None:
    err = connect_error(AssertionError(), "wall", _endpoint())
    assert isinstance(err, DeviceUnreachable)
    assert "refused to open a secure channel" in err.detail
