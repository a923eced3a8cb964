"""An edge gateway installs the core only (no server extra): the CLI still starts, and a
command group whose modules need the server extra says what to install instead of failing
every command with a traceback. A missing module of our own is a bug and is not hidden."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cityops.errors import PlatformError
from cli.main import _missing_extra, _unavailable


def test_a_missing_third_party_module_is_the_server_extra() -> None:
    assert _missing_extra(ModuleNotFoundError("x", name="psycopg")) == "psycopg"
    assert _missing_extra(ModuleNotFoundError("x", name="scipy.stats")) == "scipy"
    assert _missing_extra(ModuleNotFoundError("x", name="datafoundation.quality")) is None
    assert _missing_extra(ModuleNotFoundError("x")) is None


def test_the_stand_in_group_names_the_extra_and_the_module() -> None:
    result = CliRunner().invoke(_unavailable("quality", "psycopg"), [])
    assert isinstance(result.exception, PlatformError)
    assert "pip install 'cityops[server]'" in str(result.exception.detail)
    assert "psycopg" in str(result.exception.detail)
    with pytest.raises(PlatformError, match="cityops quality"):
        raise result.exception
