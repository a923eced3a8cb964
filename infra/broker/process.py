"""One Mosquitto instance: its config files in a state dir, and its process."""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cityops.errors import StackError
from infra.broker import dynsec
from infra.broker.accounts import (
    TOPIC_ROOT,
    ensure_service_account,
    load_accounts,
    render_acl,
    render_password_file,
    write_private,
)

log = logging.getLogger(__name__)

MOSQUITTO = "/usr/sbin/mosquitto"


# issue #22 item 3: a 300 MiB publish was accepted and relayed
MAX_PACKET_BYTES = 16 * 1024 * 1024

@dataclass(frozen=True)
class BrokerTls:
    """A second listener, MQTT over TLS (docs/operations.md). With `client_certs`, a client
    must present a certificate of `cafile` and its common name is its username (a gateway's
    id), so no password is asked; without, clients verify the broker and log in as before."""

    port: int
    cafile: Path
    certfile: Path
    keyfile: Path
    client_certs: bool = False
    # a CRL of `cafile`'s CA: a certificate in it cannot even finish the TLS handshake
    crlfile: Path | None = None
    # the local CA's folder (infra/tls/ca.py) that issues the gateways' certificates, so a
    # revoke (onboarding, the CLI) can put them into the CRL; None with a county's own PKI
    issuer: Path | None = None


TLS_FILE = "tls.json"


def _saved_tls(state_dir: Path) -> BrokerTls | None:
    try:
        saved = json.loads((state_dir / TLS_FILE).read_text())
    except (OSError, ValueError):
        return None
    own = state_dir / "tls"
    issuer = Path(saved["issuer"]) if saved.get("issuer") else None
    crlfile = Path(saved["crlfile"]) if saved.get("crlfile") else None
    return BrokerTls(int(saved["port"]), own / "ca.crt", own / "server.crt", own / "server.key",
                     bool(saved.get("client_certs")), crlfile, issuer)


class Broker:
    """A Mosquitto listening on host:port only, with everything it owns under `state_dir`.

    `run_as` matters only when started as root: Mosquitto then switches to that user after
    binding, so the state dir is handed to it. Without it, a root-started broker stays root,
    which lets tests keep their broker under a private tmp dir the `mosquitto` user cannot enter.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        *,
        run_as: str | None = None,
        topic_root: str = TOPIC_ROOT,
        tls: BrokerTls | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        # a broker rewritten later without `tls` (the API's onboarding, `stack add-gateway`)
        # keeps the TLS listener that was configured once
        self.tls = tls or _saved_tls(self.state_dir)
        self.port = port
        self.host = host
        self.run_as = run_as
        self.topic_root = topic_root
        self.conf_path = self.state_dir / "mosquitto.conf"
        self.password_path = self.state_dir / "passwd"
        self.acl_path = self.state_dir / "acl"
        self.pid_path = self.state_dir / "mosquitto.pid"
        self.log_path = self.state_dir / "mosquitto.log"
        self.data_dir = self.state_dir / "data"
        self.dynsec_path = self.state_dir / dynsec.CONFIG_FILE
        self._proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        """(Re)write the config, password file and ACL from the accounts store."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        ensure_service_account(self.state_dir, dynsec.ADMIN, dynsec.admin_password(self.state_dir))
        accounts = load_accounts(self.state_dir)
        write_private(self.conf_path, self._render_config())
        write_private(self.password_path, render_password_file(accounts))
        write_private(self.acl_path, render_acl(accounts, self.topic_root))
        write_private(self.dynsec_path, dynsec.render_config(accounts, self.topic_root))
        self.log_path.touch(mode=0o600, exist_ok=True)
        if self.tls:  # copies the broker's user may read (the originals may be root's)
            own = self.state_dir / "tls"
            own.mkdir(exist_ok=True)
            for source, name in ((self.tls.cafile, "ca.crt"), (self.tls.certfile, "server.crt"),
                                 (self.tls.keyfile, "server.key"), (self.tls.crlfile, "ca.crl")):
                if source and source.resolve() != (own / name).resolve():
                    write_private(own / name, source.read_text())
            write_private(self.state_dir / TLS_FILE, json.dumps(
                {"port": self.tls.port, "client_certs": self.tls.client_certs,
                 "crlfile": _absolute(self.tls.crlfile), "issuer": _absolute(self.tls.issuer)})
                          + "\n")
        if self.run_as and os.geteuid() == 0:
            user = pwd.getpwnam(self.run_as)
            for path in [self.state_dir, *self.state_dir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    def _render_config(self) -> str:
        lines = [
            "# Generated by CityOps (infra/broker/process.py); edits are overwritten.",
            "per_listener_settings false",
            f"listener {self.port} {self.host}",
            "allow_anonymous false",
            f"password_file {self.password_path}",
            f"acl_file {self.acl_path}",
            # subscriptions and client ids of gateways (infra/broker/dynsec.py); checked
            # before the ACL file, which decides what the plugin leaves to it
            f"plugin {dynsec.plugin_path()}",
            f"plugin_opt_config_file {self.dynsec_path}",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            # Ingestion keeps persistent sessions: a backlog while it restarts must stay queued
            # rather than be dropped at Mosquitto's default of 1000 messages.
            "max_inflight_messages 0",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "set_tcp_nodelay true",
            # no client can make the broker (or ingestion behind it) hold a huge message: the
            # largest legitimate one, a big gateway's retained config, stays far below
            f"max_packet_size {MAX_PACKET_BYTES}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            lines.append(f"user {self.run_as or 'root'}")
        if self.tls:
            tls, own = self.tls, self.state_dir / "tls"
            lines += [f"listener {tls.port} {self.host}", f"cafile {own / 'ca.crt'}",
                      f"certfile {own / 'server.crt'}", f"keyfile {own / 'server.key'}",
                      "tls_version tlsv1.2"]
            if tls.client_certs:
                lines += ["require_certificate true", "use_identity_as_username true"]
            if tls.crlfile:  # SIGHUP re-reads it (Mosquitto >= 1.6, checked in the tests)
                lines.append(f"crlfile {own / 'ca.crl'}")
        return "\n".join(lines) + "\n"

    def pid(self) -> int | None:
        """The pid of this state dir's Mosquitto if it is alive, else None."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        except PermissionError as err:
            raise StackError(f"cannot tell whether mosquitto runs: {err}") from err
        return pid if _is_our_mosquitto(pid, self.conf_path) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout_s: float = 10.0) -> None:
        if self.is_running():
            return
        if not shutil.which(MOSQUITTO):
            raise StackError(f"{MOSQUITTO} is not installed (run infra/local/install.sh)")
        _check_port_free(self.host, self.port)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        self._wait_until_listening(timeout_s)

    def _wait_until_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise StackError(f"mosquitto exited at start: {self._log_tail()}")
            if _accepts(self.host, self.port):
                return
            time.sleep(0.02)
        raise StackError(f"mosquitto not listening on {self.host}:{self.port} after {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, timeout_s)
        self.pid_path.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _is_our_mosquitto(pid, self.conf_path):
                return True
            time.sleep(0.02)
        return False

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads the password file and the ACL; the dynamic-security
        plugin (which reads its file only at start) is told the gateways added or revoked."""
        pid = self.pid()
        if pid is None:
            raise StackError(f"cannot reload: no mosquitto running for {self.state_dir}")
        os.kill(pid, signal.SIGHUP)
        if not _has_dynsec(pid):
            log.warning("mosquitto %s runs without the dynamic-security plugin (started before"
                        " it was configured): gateways' subscriptions and client ids are not"
                        " enforced until it is restarted", pid)
            return
        deadline = time.monotonic() + 10
        while True:  # the SIGHUP is handled in Mosquitto's main loop, a moment later
            try:
                dynsec.sync(self.host, self.port, self.state_dir, load_accounts(self.state_dir),
                            self.topic_root)
                return
            except StackError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _absolute(path: Path | None) -> str:
    return str(path.absolute()) if path else ""


def _is_our_mosquitto(pid: int, conf_path: Path) -> bool:
    """Alive, not a zombie, and started with this config: a recycled pid does not count."""
    proc = Path(f"/proc/{pid}")
    try:
        # the state is the first field after the parenthesised command name
        state = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X") and str(conf_path).encode() in argv


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise StackError(f"cannot start mosquitto: {host}:{port} is in use ({err})") from err


def _has_dynsec(pid: int) -> bool:
    try:
        return "mosquitto_dynamic_security" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
