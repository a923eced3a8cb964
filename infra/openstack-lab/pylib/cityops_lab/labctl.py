"""Bootstrap and health checks for the lab, run by lab.sh with Debian's python3.

    python3 -m cityops_lab.labctl identity|resources|check|wait SECONDS

Only Debian's keystoneauth1/pymysql/yaml are used (they come with the service
packages), so this needs nothing from PyPI. Settings come from the environment
lab.sh exports: LAB_CLOUDS, LAB_SERVICE_PASS, LAB_URL_*, LAB_DB_URL, LAB_HOST,
LAB_STATE. Every step is idempotent: it looks before it creates.
"""
import os
import sys
import time

import pymysql
import yaml
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

E = os.environ
SERVICE_USERS = ("nova", "neutron", "glance", "cinder", "placement")
# (service name, type, URL): block storage is registered twice because
# openstacksdk looks for "block-storage" and Nova's [cinder] catalog_info for "volumev3".
SERVICES = (
    ("nova", "compute", E.get("LAB_URL_NOVA")),
    ("placement", "placement", E.get("LAB_URL_PLACEMENT")),
    ("glance", "image", E.get("LAB_URL_GLANCE")),
    ("neutron", "network", E.get("LAB_URL_NEUTRON")),
    ("cinder", "block-storage", E.get("LAB_URL_CINDER")),
    ("cinderv3", "volumev3", E.get("LAB_URL_CINDER")),
)
FLAVORS = {"m1.tiny": (1, 512, 1), "m1.small": (2, 2048, 10)}  # vcpus, MB, GB


def admin_session():
    with open(E["LAB_CLOUDS"]) as f:
        auth = yaml.safe_load(f)["clouds"]["cityops-lab"]["auth"]
    plugin = v3.Password(**auth)
    return ks_session.Session(auth=plugin, timeout=30)


class Api:
    """Thin JSON helper over one keystoneauth session."""

    def __init__(self, sess):
        self.s = sess

    def call(self, method, service, path, **kw):
        kw.setdefault("endpoint_filter", {"service_type": service, "interface": "public",
                                          "region_name": "RegionOne"})
        kw.setdefault("raise_exc", True)
        resp = self.s.request(path, method, **kw)
        return resp.json() if resp.content and "json" in resp.headers.get("Content-Type", "") else {}

    def get(self, service, path, **kw):
        return self.call("GET", service, path, **kw)

    def post(self, service, path, body, **kw):
        return self.call("POST", service, path, json=body, **kw)


def ensure(api, kind, plural, name, body, service="identity", path=None, query=None):
    """Return the first object named NAME in /PATH, creating it with BODY if absent."""
    path = path or "/" + plural
    found = api.get(service, "{}?name={}{}".format(path, name, query or ""))[plural]
    if found:
        return found[0]
    return api.post(service, path, {kind: dict(body, name=name)})[kind]


def identity(api):
    project = ensure(api, "project", "projects", "service",
                     {"domain_id": "default", "description": "OpenStack service users"})
    roles = {r: ensure(api, "role", "roles", r, {}) for r in ("admin", "service")}
    for user in SERVICE_USERS:
        uid = ensure(api, "user", "users", user, {"domain_id": "default",
                                                  "password": E["LAB_SERVICE_PASS"]})["id"]
        for role in roles.values():
            # The "service" role is what Cinder's OSSA-2023-003 check asks of
            # the service token Nova sends; PUT is idempotent.
            api.call("PUT", "identity", "/projects/{}/users/{}/roles/{}".format(project["id"], uid, role["id"]))
    for name, stype, url in SERVICES:
        svc = ensure(api, "service", "services", name, {"type": stype}, query="&type=" + stype)
        eps = api.get("identity", "/endpoints?service_id=" + svc["id"])["endpoints"]
        for iface in ("public", "internal", "admin"):
            ep = [e for e in eps if e["interface"] == iface]
            if not ep:
                api.post("identity", "/endpoints", {"endpoint": {
                    "service_id": svc["id"], "interface": iface, "url": url,
                    "region_id": "RegionOne"}})
            elif ep[0]["url"] != url:  # ports changed since the last up
                api.call("PATCH", "identity", "/endpoints/" + ep[0]["id"],
                         json={"endpoint": {"url": url}})


def resources(api):
    images = api.get("image", "/v2/images?name=cirros")["images"]
    for img in images:
        if img["status"] != "active":  # an upload cut short: start again
            api.call("DELETE", "image", "/v2/images/" + img["id"])
    if not [i for i in images if i["status"] == "active"]:
        # A 1 MiB dummy "disk": the fake driver never reads it, raw needs no header.
        data = b"CITYOPS-LAB-FAKE-CIRROS\n".ljust(1 << 20, b"\0")
        path = os.path.join(E["LAB_STATE"], "cirros-lab.img")
        with open(path, "wb") as f:
            f.write(data)
        img = api.post("image", "/v2/images", {
            "name": "cirros", "disk_format": "raw", "container_format": "bare",
            "visibility": "public", "os_distro": "cirros", "min_disk": 1})
        api.call("PUT", "image", "/v2/images/{}/file".format(img["id"]), data=data,
                 headers={"Content-Type": "application/octet-stream"})
    have = {f["name"] for f in api.get("compute", "/flavors?is_public=None")["flavors"]}
    for name, (vcpus, ram, disk) in FLAVORS.items():
        if name not in have:
            api.post("compute", "/flavors", {"flavor": {
                "name": name, "vcpus": vcpus, "ram": ram, "disk": disk}})
    net = ensure(api, "network", "networks", "public", {
        "shared": True, "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"}, service="network", path="/v2.0/networks")
    # 203.0.113.0/24 is a documentation range: only data here, nothing routes it.
    ensure(api, "subnet", "subnets", "public-subnet", {
        "network_id": net["id"], "ip_version": 4, "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.250"}]},
        service="network", path="/v2.0/subnets")


def _up(services, binary):
    svc = [s for s in services if s["binary"] == binary]
    return bool(svc) and all(s["state"] == "up" and s["status"] == "enabled" for s in svc)


def checks(api):
    """Yield (name, ok, detail) for every part `up` waits for."""
    host = E["LAB_HOST"]

    def run(name, fn):
        try:
            detail = fn()
            return name, bool(detail), detail or "not ready"
        except (ks_exc.ClientException, pymysql.MySQLError, OSError, KeyError) as e:
            return name, False, f"{type(e).__name__}: {str(e)[:120]}"

    yield run("keystone", lambda: api.s.get_token() and "token issued")
    yield run("glance", lambda: "%d images" % len(api.get("image", "/v2/images")["images"]))
    yield run("neutron", lambda: "%d networks" % len(api.get("network", "/v2.0/networks")["networks"]))
    yield run("cinder", lambda: _up(api.get("block-storage", "/os-services")["services"],
                                    "cinder-volume") and "cinder-volume up")
    yield run("nova", lambda: _up(api.get("compute", "/os-services")["services"],
                                  "nova-compute") and "nova-compute up")

    def cell():
        conn = pymysql.connect(**_db_args(), database="nova_api")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT c.name FROM host_mappings h JOIN cell_mappings c"
                        " ON h.cell_id = c.id WHERE h.host = %s", (host,))
            row = cur.fetchone()
        return row and f"host {host} in {row[0]}"
    yield run("cell", cell)

    def placement():
        rps = api.get("placement", "/resource_providers?name=" + host)["resource_providers"]
        if not rps:
            return None
        inv = api.get("placement", "/resource_providers/{}/inventories".format(rps[0]["uuid"]))
        vcpu = inv["inventories"].get("VCPU")
        return vcpu and "provider %s, %d VCPU" % (host, vcpu["total"])
    yield run("placement", placement)


def _db_args():
    return {"host": "127.0.0.1", "port": int(E["LAB_DB_PORT"]), "user": "openstack",
            "password": E["LAB_DB_PASS"], "connect_timeout": 5}


def check(api, quiet=False):
    bad = 0
    for _name, ok, _detail in checks(api):
        bad += not ok
        if not quiet or not ok:
            pass
    return bad


def dead_services():
    """Services whose pidfile names a process that is gone (or a zombie)."""
    run = os.path.join(E["LAB_STATE"], "run")
    dead = []
    for name in sorted(os.listdir(run)):
        if not name.endswith(".pid"):
            continue
        with open(os.path.join(run, name)) as f:
            pid, start = f.read().split()
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            fields = ["X"]
        if fields[0] in "ZX" or fields[19] != start:
            dead.append(name[:-4])
    return dead


def wait(api, seconds):
    deadline = time.monotonic() + seconds
    while True:
        dead = dead_services()
        if dead:  # no use waiting for a service that has already died
            return 1
        results = list(checks(api))
        failing = [r for r in results if not r[1]]
        if not failing:
            return 0
        if time.monotonic() > deadline:
            for _name, _, _detail in failing:
                pass
            return 1
        time.sleep(1)  # poll interval; the deadline above bounds the wait


def main():
    cmd = sys.argv[1]
    api = Api(admin_session())
    if cmd == "identity":
        identity(api)
    elif cmd == "resources":
        resources(api)
    elif cmd == "check":
        sys.exit(1 if check(api) else 0)
    elif cmd == "wait":
        sys.exit(wait(api, float(sys.argv[2])))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
