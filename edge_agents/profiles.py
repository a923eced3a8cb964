"""Finding and loading device profiles (YAML), validated, with the failing field's path."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from cityops.errors import ConfigError
from edge_agents.points import Profile

PROFILES_DIR = Path(__file__).parent / "profiles"
_ADAPTER: TypeAdapter[Profile] = TypeAdapter(Profile)


PROTOCOL_TAGS = {"modbus", "opcua", "mqtt", "onvif", "snmp"}


def describe_validation(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        # a discriminated union puts its tag (the protocol) into the path: drop it
        loc = [p for p in e["loc"] if p not in PROTOCOL_TAGS]
        path = ".".join(str(p) for p in loc) or "(top)"
        lines.append(f"{source}: {path}: {e['msg']}")
    return "\n".join(lines)


def resolve(ref: str, base: Path | None = None) -> Path:
    """A profile reference is a YAML path, or a name under edge_agents/profiles/."""
    candidates = [Path(ref)]
    if base is not None:
        candidates.insert(0, base / ref)
    candidates.append(PROFILES_DIR / f"{ref}.yaml")
    for path in candidates:
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return path
    known = ", ".join(sorted(all_profile_refs()))
    raise ConfigError(f"profile {ref!r} not found (known: {known})")


def load_profile(ref: str, base: Path | None = None) -> Profile:
    path = resolve(ref, base)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    return parse_profile(data, str(path))


def parse_profile(data: object, source: str) -> Profile:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise ConfigError(describe_validation(err, source)) from err


def all_profile_refs() -> list[str]:
    return [
        str(p.relative_to(PROFILES_DIR).with_suffix(""))
        for p in sorted(PROFILES_DIR.rglob("*.yaml"))
    ]
