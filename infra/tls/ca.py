"""A local certificate authority for encryption in transit (the `cryptography` package).

`cityops stack up` keeps one under <state_dir>/tls: the CA, a server certificate for the
loopback services (broker, API, PostgreSQL) and, on demand, a client certificate per gateway
whose common name is the gateway's id (the broker takes it as the username, so a gateway
presenting another gateway's certificate acts as that other gateway and no more). Keys are
written 0600. A county with its own PKI puts its files in the settings instead
(docs/operations.md); nothing here is then used.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityops.errors import InvalidInput

CA_DAYS, LEAF_DAYS = 3650, 825
# issued client certificates' serials by identity, so a revoke reaches every one ever issued
INDEX_FILE = "issued.json"
CRL_FILE = "ca.crl"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CityOps"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class LocalCA:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert_path, self.key_path = folder / "ca.crt", folder / "ca.key"

    def ensure(self) -> LocalCA:
        """Load the CA, or make it the first time."""
        if self.cert_path.exists() and self.key_path.exists():
            return self
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        # a name of its own: two CAs of one name make verifiers try the wrong one's key
        name = _name(f"CityOps local CA {os.urandom(4).hex()}")
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()))
        _write_private(self.key_path, _key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return self

    def _issue(self, cn: str, name: str, server_hosts: list[str] | None) -> Issued:
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_hosts else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder().subject_name(_name(cn))
                   .issuer_name(ca_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server_hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(h)
                                                                         for h in server_hosts]),
                                            critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        if not server_hosts:
            self._record(cn, cert.serial_number)
        issued = Issued(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        _write_private(issued.key, _key_pem(key))
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return issued

    def server(self, hosts: list[str], name: str = "server") -> Issued:
        """A certificate for these host names and addresses (kept once made)."""
        existing = Issued(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        if existing.cert.exists() and existing.key.exists():
            return existing
        return self._issue(hosts[0], name, hosts)

    def client(self, identity: str) -> Issued:
        """A new client certificate whose common name is `identity` (a gateway id)."""
        if not identity or "/" in identity or identity.startswith("."):
            raise InvalidInput(f"{identity!r} cannot name a client certificate")
        return self._issue(identity, f"clients/{identity}", None)

    def ensure_client(self, identity: str) -> Issued:
        """The identity's certificate as kept, or a new one (a service's: svc-ingest...);
        one revoked is replaced."""
        kept = Issued(self.folder / "clients" / f"{identity}.crt",
                      self.folder / "clients" / f"{identity}.key")
        if kept.cert.exists() and kept.key.exists():
            serial = x509.load_pem_x509_certificate(kept.cert.read_bytes()).serial_number
            if serial not in self.revoked_serials():
                return kept
        return self.client(identity)

    # -- revocation: a CRL the broker checks at each TLS handshake (docs/operations.md)
    @property
    def crl_path(self) -> Path:
        return self.folder / CRL_FILE

    def _issued(self) -> dict[str, list[str]]:
        try:
            return json.loads((self.folder / INDEX_FILE).read_text())
        except FileNotFoundError:
            return {}

    def _record(self, identity: str, serial: int) -> None:
        index = self._issued()
        index.setdefault(identity, []).append(format(serial, "x"))
        _write_private(self.folder / INDEX_FILE, (json.dumps(index, indent=1) + "\n").encode())

    def revoked_serials(self) -> set[int]:
        if not self.crl_path.exists():
            return set()
        crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
        return {entry.serial_number for entry in crl}

    def revoke(self, identity: str) -> int:
        """Every certificate ever issued to `identity` goes into the CRL; how many were new."""
        revoked = self.revoked_serials()
        new = {int(s, 16) for s in self._issued().get(identity, [])} - revoked
        self.write_crl(revoked | new)
        return len(new)

    def write_crl(self, serials: set[int] | None = None) -> Path:
        """(Re)sign the CRL, valid as long as the CA: an expired CRL would make the broker
        refuse every certificate, and `stack up` or a revoke signs a fresh one anyway."""
        serials = self.revoked_serials() if serials is None else serials
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
                   .last_update(now - dt.timedelta(minutes=5))
                   .next_update(ca_cert.not_valid_after_utc))
        for serial in sorted(serials):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(now).build())
        crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        tmp = self.crl_path.with_name(f".{CRL_FILE}.tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.crl_path)  # the broker never reads half a CRL
        return self.crl_path


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
