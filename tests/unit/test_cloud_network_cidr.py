"""A network job's subnet is checked before it is queued: what the cloud would store
differently (host bits) or cannot use (bad octets, no room for a gateway) is refused by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud_control.provider import NetworkSpec


def test_a_network_address_with_its_prefix_is_taken() -> None:
    assert NetworkSpec(project="p", name="n", cidr="10.20.0.0/24").cidr == "10.20.0.0/24"
    assert NetworkSpec(project="p", name="n", cidr="192.168.8.0/30").cidr == "192.168.8.0/30"


@pytest.mark.parametrize(("cidr", "says"), [
    ("10.20.0.5/24", "host bits set: the network is 10.20.0.0/24"),
    ("300.1.1.0/24", "not an IPv4 network"),
    ("10.20.0.0/33", "not an IPv4 network"),
    ("10.0.0.0/31", "at most /30"),
    ("10.20.0.0", "should match pattern"),
])
def test_a_subnet_the_cloud_would_store_otherwise_is_refused(cidr: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        NetworkSpec(project="p", name="n", cidr=cidr)
    assert err.value.errors()[0]["loc"] == ("cidr",)
    assert says in str(err.value)
