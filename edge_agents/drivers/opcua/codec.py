"""Values and NodeIds between the profile's words and asyncua's types.

NodeIds may name their namespace by URI (`nsu=urn:vendor:wall;s=Wall.Power`): a server
numbers its namespaces as it registers them, so the same device model has its variables at
ns=2 on one server and ns=4 on another. `NodeIds` resolves every URI once per session
against the server's namespace array.
"""

from __future__ import annotations

from typing import Any

from asyncua import ua

from cityops.errors import DeviceConfigInvalid, DeviceError, DeviceRejected, DeviceUnreachable
from cityops.wire import Quality, Value
from edge_agents.points import DataType

VARIANT_OF = {
    DataType.BOOL: ua.VariantType.Boolean, DataType.INT16: ua.VariantType.Int16,
    DataType.UINT16: ua.VariantType.UInt16, DataType.INT32: ua.VariantType.Int32,
    DataType.UINT32: ua.VariantType.UInt32, DataType.INT64: ua.VariantType.Int64,
    DataType.UINT64: ua.VariantType.UInt64, DataType.FLOAT32: ua.VariantType.Float,
    DataType.FLOAT64: ua.VariantType.Double, DataType.STRING: ua.VariantType.String,
}
_INTEGER_BITS = {
    ua.VariantType.SByte: (8, True), ua.VariantType.Byte: (8, False),
    ua.VariantType.Int16: (16, True), ua.VariantType.UInt16: (16, False),
    ua.VariantType.Int32: (32, True), ua.VariantType.UInt32: (32, False),
    ua.VariantType.Int64: (64, True), ua.VariantType.UInt64: (64, False),
}
_FLOAT_VARIANTS = {ua.VariantType.Float, ua.VariantType.Double}


def quality_of(status: ua.StatusCode | None) -> Quality:
    if status is None or status.is_good():
        return Quality.GOOD
    return Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD


def variant_value(value: Value, vtype: ua.VariantType) -> Any:
    """A command's value as the Python type the node's Variant type needs."""
    try:
        if vtype == ua.VariantType.Boolean:
            return bool(value)
        if vtype in _INTEGER_BITS:
            number = round(value) if isinstance(value, float) else int(value)
            bits, signed = _INTEGER_BITS[vtype]
            low = -(1 << (bits - 1)) if signed else 0
            high = (1 << (bits - 1 if signed else bits)) - 1
            if not low <= number <= high:  # else the encoder fails deep in the library
                raise DeviceRejected(f"{value!r} is outside {vtype.name} ({low}..{high})")
            return number
        if vtype in _FLOAT_VARIANTS:
            return float(value)
    except (TypeError, ValueError) as err:
        raise DeviceRejected(f"{value!r} cannot be written as {vtype.name}") from err
    if vtype == ua.VariantType.String:
        return str(value)
    raise DeviceRejected(f"nodes of type {vtype.name} cannot be written")


def split_uri(text: str) -> tuple[str | None, str]:
    """("urn:x", "s=a") for "nsu=urn:x;s=a"; (None, text) for any other NodeId text."""
    if text.startswith("nsu="):
        uri, _, rest = text[4:].partition(";")
        return uri, rest
    return None, text


class NodeIds:
    """NodeId texts resolved against one session's namespace array."""

    def __init__(self, namespaces: list[str]) -> None:
        self.namespaces = namespaces
        self._cache: dict[str, ua.NodeId] = {}

    def __call__(self, text: str) -> ua.NodeId:
        node = self._cache.get(text)
        if node is None:
            uri, rest = split_uri(text)
            if uri is not None:
                if uri not in self.namespaces:
                    raise DeviceConfigInvalid(
                        f"{text}: the server has no namespace {uri} (it has "
                        f"{', '.join(self.namespaces[1:]) or 'none but OPC-UA'})")
                rest = f"ns={self.namespaces.index(uri)};{rest}"
            node = self._cache[text] = ua.NodeId.from_string(rest)
        return node

    def check(self, texts: list[str]) -> None:
        """Fail now, at connect, for a namespace the server does not have."""
        for text in texts:
            self(text)


# what a server answers when it does not accept the agent's user or certificate
AUTH_REFUSALS = {
    "BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected",
    "BadCertificateInvalid", "BadCertificateUntrusted", "BadCertificateUriInvalid",
    "BadCertificateHostNameInvalid", "BadCertificateTimeInvalid", "BadCertificateRevoked",
    "BadCertificateUseNotAllowed", "BadSecurityChecksFailed",
}


def translate(err: Exception, what: str) -> DeviceError:
    if isinstance(err, ua.UaStatusCodeError):
        return DeviceRejected(f"{what}: {err}", status=str(err))
    return DeviceUnreachable(f"{what}: {err!r}")


def status_name(err: Exception) -> str | None:
    if isinstance(err, ua.UaStatusCodeError):
        return ua.StatusCode(err.code).name
    return None
