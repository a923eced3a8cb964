"""Every shipped profile loads; bad profiles fail with the field's path."""

import pytest

from cityops.errors import ConfigError
from edge_agents.profiles import all_profile_refs, load_profile, parse_profile


@pytest.mark.parametrize("ref", all_profile_refs())
def test_every_shipped_profile_loads(ref: str) -> None:
    profile = load_profile(ref)
    assert profile.points


def _profile(**point: object) -> dict:
    base = {"name": "p", "data_type": "float32",
            "address": {"table": "input_register", "offset": 0}}
    return {"model": "m", "category": "power", "protocol": "modbus", "points": [base | point]}


def test_error_names_the_field_path() -> None:
    with pytest.raises(ConfigError, match=r"points\.0\.address\.offset"):
        parse_profile(_profile(address={"table": "input_register", "offset": 70000}), "x.yaml")


def test_input_register_cannot_be_writable() -> None:
    with pytest.raises(ConfigError, match="cannot be written"):
        parse_profile(_profile(writable=True), "x.yaml")


def test_string_needs_length() -> None:
    with pytest.raises(ConfigError, match="length"):
        parse_profile(_profile(data_type="string"), "x.yaml")


def test_write_checks_range_and_type() -> None:
    profile = parse_profile(
        _profile(data_type="uint16", writable=True, range={"min": 0, "max": 10},
                 address={"table": "holding_register", "offset": 0}),
        "x.yaml",
    )
    point = profile.point("p")
    assert point.check_write(5) is None
    assert "above the maximum" in point.check_write(11)
    assert "takes a number" in point.check_write("x")


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match="colour"):
        parse_profile(_profile(colour="red"), "x.yaml")
