"""An OPC-UA server simulating a device from its profile (asyncua's server).

Every point becomes a variable with the profile's NodeId and the Variant type of its data
type; writable points accept writes; points with `simulate:` move every tick; methods with
`call:` exist on their object and apply the profile's `writes` with their arguments.
Security None and Basic256Sha256 (Sign, SignAndEncrypt) are offered, with a self-signed
server certificate made on first start; a username/password can be required.

Like the field's servers (node-opcua), methods check their arguments' types and answer with
outputs `ok` and `message`; tests can make a method refuse (ok=false), cap the sessions
(BadTooManySessions), let sessions time out quickly, and register other namespaces first so
the profile's namespace gets another index (profiles may name it by URI, `nsu=`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_session import SessionState
from asyncua.server.user_managers import UserManager

from edge_agents.drivers.opcua.codec import VARIANT_OF, NodeIds, variant_value
from edge_agents.points import DataType, Method, OpcUaPoint, OpcUaProfile
from simulators.values import simulated_value

log = logging.getLogger(__name__)
NAMESPACE = "urn:cityops:simulator"
TICKS_NODE = "ns=2;s=_simulator.ticks"
TICK_METHOD = "ns=2;s=_simulator.tick"
FOLDER_SIZE = 200
INITIAL = {DataType.BOOL: False, DataType.STRING: ""}


class _Users(UserManager):
    """Anonymous allowed only when no username is configured."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self.username, self.password = username, password
        self.refused = 0  # logins refused: lets a test see how often a client tries

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if self.username is None or (username == self.username and password == self.password):
            return User(role=UserRole.User)
        self.refused += 1
        return None


class OpcUaSimulator:
    def __init__(
        self, profile: OpcUaProfile, host: str, port: int, *, secure_dir: Path | None = None,
        username: str | None = None, password: str | None = None, tick_s: float = 0.5,
        refuse_subscriptions: bool = False, max_sessions: int | None = None,
        min_session_timeout_s: float | None = None, extra_namespaces: tuple[str, ...] = (),
    ) -> None:
        self.profile, self.host, self.port = profile, host, port
        self.secure_dir, self.tick_s = secure_dir, tick_s
        self.refuse_subscriptions = refuse_subscriptions  # a server that cannot subscribe
        self.max_sessions, self.min_session_timeout_s = max_sessions, min_session_timeout_s
        self.extra_namespaces = extra_namespaces  # registered before ours: ours moves up
        self.users = _Users(username, password)
        self.server = Server(user_manager=self.users)
        self.calls: list[tuple[str, list[Any]]] = []
        self.refusing: set[str] = set()  # methods that answer ok=false and do nothing
        self._sessions: list[Any] = []
        self.sessions_created = 0
        self._ids = NodeIds([])
        self._nodes: dict[str, tuple[ua.NodeId, ua.VariantType, OpcUaPoint]] = {}
        self._last: dict[str, float] = {}
        self.tick_busy_s = 0.0
        self.ticks = 0

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/cityops/"

    def sessions(self) -> int:
        """Sessions the server holds open, including those whose client vanished."""
        self._sessions = [s for s in self._sessions if s.state is not SessionState.Closed]
        return len(self._sessions)

    def subscriptions(self) -> int:
        return len(self.server.iserver.subscription_service.subscriptions)

    def _limit_sessions(self) -> None:
        iserver = self.server.iserver
        create = iserver.create_session

        def create_session(*args: Any, **kwargs: Any) -> Any:
            if self.max_sessions is not None and self.sessions() >= self.max_sessions:
                raise ServiceError(ua.StatusCodes.BadTooManySessions)
            session = create(*args, **kwargs)
            self._sessions.append(session)
            self.sessions_created += 1
            return session

        iserver.create_session = create_session

    async def setup(self) -> None:
        server = self.server
        await server.init()
        if self.refuse_subscriptions:
            server.iserver.max_subscriptions = 0
        if self.min_session_timeout_s is not None:
            server.iserver.min_session_timeout_ms = self.min_session_timeout_s * 1000
        self._limit_sessions()
        server.set_endpoint(self.url)
        server.set_server_name(f"CityOps simulator: {self.profile.model}")
        policies = [ua.SecurityPolicyType.NoSecurity]
        if self.secure_dir is not None:
            self.secure_dir.mkdir(parents=True, exist_ok=True)
            key, cert = self.secure_dir / "server-key.pem", self.secure_dir / "server-cert.der"
            from asyncua.crypto.cert_gen import setup_self_signed_certificate
            from cryptography.x509.oid import ExtendedKeyUsageOID

            await setup_self_signed_certificate(
                key, cert, "urn:cityops:simulator", self.host,
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], {},
            )
            await server.load_certificate(cert)
            await server.load_private_key(key)
            policies += [ua.SecurityPolicyType.Basic256Sha256_Sign,
                         ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        server.set_security_policy(policies)
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        await server.register_namespace(NAMESPACE)
        self._ids = NodeIds(await server.get_namespace_array())
        await self._add_points()
        await self._add_methods()
        # how many ticks are done: lets a benchmark count the changes the server made
        objects = self.server.nodes.objects
        self._ticks_node = await objects.add_variable(
            ua.NodeId.from_string(TICKS_NODE), "simulator_ticks",
            ua.Variant(0, ua.VariantType.UInt64))

        async def tick_now(_parent: ua.NodeId) -> list[ua.Variant]:
            await self._tick_once()
            return []

        # one tick on demand (tick_s 0 ticks only this way): a benchmark paces the changes
        await objects.add_method(ua.NodeId.from_string(TICK_METHOD), "simulator_tick",
                                 tick_now, [], [])

    async def _add_points(self) -> None:
        folder = await self.server.nodes.objects.add_folder(
            ua.NodeId(self.profile.model, 2), self.profile.model)
        # one AddNodes call for every point, in sub-folders of FOLDER_SIZE: asyncua checks a
        # parent's references one by one, so 10,000 children of one folder take minutes
        parents = [folder.nodeid]
        if len(self.profile.points) > FOLDER_SIZE:
            parents = [
                (await folder.add_folder(ua.NodeId(f"{self.profile.model}/{n}", 2), str(n))).nodeid
                for n in range(-(-len(self.profile.points) // FOLDER_SIZE))
            ]
        items = []
        for index, point in enumerate(self.profile.points):
            nodeid = self._ids(point.address.node)
            vtype = VARIANT_OF[point.data_type]
            initial = INITIAL.get(point.data_type, 0)
            if point.simulate is not None:
                initial = self._raw(point, simulated_value(point.simulate, time.time(), None))
            items.append(_variable_item(parents[index // FOLDER_SIZE], nodeid, point.name,
                                        ua.Variant(variant_value(initial, vtype), vtype),
                                        point.writable))
            self._nodes[point.name] = (nodeid, vtype, point)
        for result in await self.server.iserver.isession.add_nodes(items):
            result.StatusCode.check()

    async def _add_methods(self) -> None:
        for method in self.profile.methods:
            if method.call is None:
                continue
            objects = self.server.nodes.objects
            object_id = self._ids(method.call.object)
            try:
                obj = self.server.get_node(object_id)
                await obj.read_browse_name()
            except ua.UaError:
                obj = await objects.add_object(object_id, method.call.object.split("=")[-1])
            await obj.add_method(
                self._ids(method.call.method), method.name, self._method(method),
                [_argument(a.name, VARIANT_OF[a.data_type]) for a in method.args],
                [_argument("ok", ua.VariantType.Boolean),
                 _argument("message", ua.VariantType.String)],
            )

    def _method(self, method: Method):
        declared = [VARIANT_OF[a.data_type] for a in method.args]

        async def run(_parent: ua.NodeId, *args: ua.Variant) -> Any:
            if len(args) != len(declared):
                return ua.StatusCode(ua.StatusCodes.BadArgumentsMissing if len(args) < len(
                    declared) else ua.StatusCodes.BadTooManyArguments)
            checks = [ua.StatusCode(ua.StatusCodes.Good if v.VariantType == t
                                    else ua.StatusCodes.BadTypeMismatch)
                      for v, t in zip(args, declared, strict=True)]
            if not all(c.is_good() for c in checks):  # as node-opcua answers
                return ua.CallMethodResult(StatusCode=ua.StatusCode(
                    ua.StatusCodes.BadInvalidArgument), InputArgumentResults=checks)
            values = {a.name: v.Value for a, v in zip(method.args, args, strict=True)}
            self.calls.append((method.name, list(values.values())))
            if method.name in self.refusing:
                return [ua.Variant(False, ua.VariantType.Boolean),
                        ua.Variant(f"{method.name} refused by the device", ua.VariantType.String)]
            for write in method.writes:
                value = values[write.arg] if write.arg is not None else write.value
                await self.set(write.point, value)
            return [ua.Variant(True, ua.VariantType.Boolean), ua.Variant("", ua.VariantType.String)]

        return run

    def _raw(self, point: OpcUaPoint, value: Any) -> Any:
        if point.data_type is DataType.BOOL:
            return bool(value >= 0.5) if isinstance(value, float) else bool(value)
        if point.data_type is DataType.STRING:
            return str(value)
        return point.to_raw(value)

    async def set(self, point_name: str, value: Any) -> None:
        """Store an engineering value as the device would (also used by tests)."""
        nodeid, vtype, point = self._nodes[point_name]
        raw = value if isinstance(value, bool | str) else self._raw(point, value)
        await self.server.write_attribute_value(
            nodeid, ua.DataValue(ua.Variant(variant_value(raw, vtype), vtype),
                                 SourceTimestamp=datetime.now(UTC)))

    async def tick(self, t: float) -> None:
        for name, (_nodeid, _vtype, point) in self._nodes.items():
            if point.simulate is None or point.writable:
                continue  # a written point keeps what the client wrote
            value = simulated_value(point.simulate, t, self._last.get(name))
            self._last[name] = value
            await self.set(name, value)

    async def _tick_once(self) -> None:
        started = time.monotonic()
        await self.tick(time.time())
        self.ticks += 1
        await self._ticks_node.write_value(ua.Variant(self.ticks, ua.VariantType.UInt64))
        self.tick_busy_s = time.monotonic() - started

    async def serve(self) -> None:
        await self.setup()
        async with self.server:
            log.info("simulating %s on %s", self.profile.model, self.url)
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            if self.tick_s <= 0:
                await asyncio.Event().wait()  # ticks only on demand, until cancelled
            while True:
                # fixed rate: values change every tick_s however long a tick takes
                next_at += self.tick_s
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                await self._tick_once()
                if self.tick_busy_s > self.tick_s:
                    log.warning("a tick took %.2f s, longer than tick_s", self.tick_busy_s)
                    next_at = loop.time()


async def serve(profile: OpcUaProfile, host: str, port: int, tick_s: float = 0.5,
                secure_dir: Path | None = None, username: str | None = None,
                password: str | None = None) -> None:
    """Serve the profile until cancelled."""
    sim = OpcUaSimulator(profile, host, port, secure_dir=secure_dir, username=username,
                         password=password, tick_s=tick_s)
    await sim.serve()


def _argument(name: str, vtype: ua.VariantType) -> ua.Argument:
    arg = ua.Argument()
    arg.Name, arg.DataType, arg.ValueRank = name, ua.NodeId(vtype.value), -1
    return arg


def _variable_item(parent: ua.NodeId, nodeid: ua.NodeId, name: str, value: ua.Variant,
                   writable: bool) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = nodeid
    item.BrowseName = ua.QualifiedName(name, nodeid.NamespaceIndex)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(name)
    attrs.DataType = ua.NodeId(value.VariantType.value)  # built-in types: same numbers
    attrs.Value = value
    attrs.ValueRank = ua.ValueRank.Scalar
    access = ua.AccessLevel.CurrentRead.mask
    if writable:
        access |= ua.AccessLevel.CurrentWrite.mask
    attrs.AccessLevel = attrs.UserAccessLevel = access
    item.NodeAttributes = attrs
    return item
