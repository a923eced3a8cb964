"""OPC-UA method calls: arguments typed as the server declares them, the device's answer
checked, what the method changes read back and compared.

Servers check argument types strictly (node-opcua answers BadInvalidArgument to a UInt16
where the method declares Int32), so the types come from the method's InputArguments
property, read once per session; the profile's types only check the command's values. A
method can run and still refuse the work: a Boolean output named by `ok_output` (or, by
default, `ok`, `success` or `succeeded`) that is false, or a bad StatusCode output, makes the
command fail with every output in its detail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua
from asyncua.common.ua_utils import data_type_to_variant_type

from cityops.errors import DeviceRejected
from cityops.wire import Value
from edge_agents.drivers.opcua.codec import VARIANT_OF, NodeIds, variant_value
from edge_agents.points import Method

OK_NAMES = {"ok", "success", "succeeded"}
READBACK_EVERY_S = 0.1


@dataclass(frozen=True)
class Signature:
    inputs: list[tuple[str, ua.VariantType]] | None  # None: the server does not declare them
    outputs: list[str]


async def _arguments(client: Client, method: ua.NodeId, prop: str) -> list[ua.Argument] | None:
    try:
        node = await client.get_node(method).get_child(f"0:{prop}")
        value = await node.read_value()
    except ua.UaStatusCodeError:  # BadNoMatch: the method has no such property
        return None
    return list(value or [])


async def _variant_type(client: Client, arg: ua.Argument) -> ua.VariantType:
    dtype = arg.DataType
    if arg.ValueRank is not None and arg.ValueRank >= 0:  # -1 scalar, -2 any, -3 scalar or 1-D
        raise DeviceRejected(f"argument {arg.Name} is an array: not supported")
    if dtype.NamespaceIndex == 0 and isinstance(dtype.Identifier, int) and dtype.Identifier <= 25:
        return ua.VariantType(dtype.Identifier)
    # a derived type (an enumeration, a vendor's subtype of UInt16): its built-in base
    return await data_type_to_variant_type(client.get_node(dtype))


async def read_signature(client: Client, method: ua.NodeId) -> Signature:
    inputs = await _arguments(client, method, "InputArguments")
    outputs = await _arguments(client, method, "OutputArguments") or []
    typed = None
    if inputs is not None:
        typed = [(a.Name, await _variant_type(client, a)) for a in inputs]
    return Signature(typed, [a.Name or f"output_{i}" for i, a in enumerate(outputs)])


def input_variants(method: Method, args: dict[str, Value], sig: Signature) -> list[ua.Variant]:
    if sig.inputs is None:
        types = [VARIANT_OF[a.data_type] for a in method.args]
    elif len(sig.inputs) != len(method.args):
        names = ", ".join(f"{n} {t.name}" for n, t in sig.inputs) or "none"
        raise DeviceRejected(f"method {method.name}: the server's method takes "
                             f"{len(sig.inputs)} argument(s) ({names}), the profile gives "
                             f"{len(method.args)}")
    else:
        # an abstract declared type (BaseDataType, Number, Integer...) takes the profile's
        types = [VARIANT_OF[a.data_type] if t == ua.VariantType.Variant else t
                 for a, (_name, t) in zip(method.args, sig.inputs, strict=True)]
    return [ua.Variant(variant_value(args[a.name], t), t)
            for a, t in zip(method.args, types, strict=True)]


def check_result(method: Method, sig: Signature, result: ua.CallMethodResult) -> list[Any]:
    """The output values; DeviceRejected when the call or the device's answer says it failed."""
    outputs = [v.Value for v in result.OutputArguments or []]
    names = sig.outputs + [f"output_{i}" for i in range(len(sig.outputs), len(outputs))]
    shown = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, outputs, strict=False))
    if not result.StatusCode.is_good():
        bad = [f"{a.name}: {s.name}" for a, s in
               zip(method.args, result.InputArgumentResults or [], strict=False) if not s.is_good()]
        raise DeviceRejected(f"method {method.name}: {result.StatusCode.name}"
                             + (f" ({'; '.join(bad)})" if bad else ""),
                             status=result.StatusCode.name)
    wanted = method.call.ok_output if method.call else None
    if wanted is not None and wanted not in names:
        raise DeviceRejected(f"method {method.name}: the server's method has no output "
                             f"{wanted!r} (it has {', '.join(names) or 'none'})")
    for name, value in zip(names, outputs, strict=False):
        refused = isinstance(value, ua.StatusCode) and not value.is_good()
        ok_flag = name == wanted if wanted else name.lower() in OK_NAMES
        refused = refused or (ok_flag and value is False)
        if refused:
            raise DeviceRejected(f"method {method.name}: the device refused: {shown}")
    return outputs


def _show(value: Any) -> str:
    if isinstance(value, ua.StatusCode):
        return value.name
    return repr(value)[:100]


async def call(client: Client, nodes: NodeIds, method: Method, variants: list[ua.Variant]
               ) -> ua.CallMethodResult:
    assert method.call is not None
    request = ua.CallMethodRequest()
    request.ObjectId = nodes(method.call.object)
    request.MethodId = nodes(method.call.method)
    request.InputArguments = variants
    (result,) = await client.uaclient.call([request])
    return result


async def confirm(read: Any, same: Any, expected: Value, timeout_s: float) -> Value:
    """Read back until the value is `expected` (a device may apply a preset a moment after the
    call returns) or the time is up; the last value read either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await read()
        if same(expected, value) or loop.time() >= deadline:
            return value
        await asyncio.sleep(READBACK_EVERY_S)
