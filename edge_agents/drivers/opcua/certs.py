"""The agent's own OPC-UA application certificate: loaded as the operator supplied it, or made
self-signed once when neither file exists.

A supplied certificate is never replaced: one that does not carry the endpoint's application
URI, has expired, or does not belong to the key is refused with the reason, since the server's
administrator trusted that certificate and a new one would be silently untrusted. Files are
read as PEM or DER by their content, whatever their names. A key this module writes is
readable by its owner only (0600).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityops.errors import DeviceConfigInvalid

VALID_DAYS = 3650  # a self-signed client certificate: replaced by the operator, not by expiry


@dataclass(frozen=True)
class Credentials:
    certificate_der: bytes
    private_key_der: bytes


def _is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DeviceConfigInvalid(f"{what} {path}: cannot read: {err.strerror}") from err


def load_certificate(path: Path) -> x509.Certificate:
    data = _read(path, "certificate")
    try:
        if _is_pem(data):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as err:
        raise DeviceConfigInvalid(f"certificate {path}: not an X.509 certificate in PEM or "
                                  f"DER: {err}") from err


def certificate_der(path: Path) -> bytes:
    """A (server's) certificate file, PEM or DER, as DER."""
    return load_certificate(path).public_bytes(serialization.Encoding.DER)


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    data = _read(path, "private_key")
    try:
        if _is_pem(data):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        # TypeError: the key is encrypted; the agent has no passphrase to open it with
        raise DeviceConfigInvalid(f"private_key {path}: not an unencrypted private key in PEM "
                                  f"or DER: {err}") from err
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DeviceConfigInvalid(f"private_key {path}: OPC-UA Basic256Sha256 needs an RSA key, "
                                  f"not {type(key).__name__}")
    return key


def check_supplied(cert: x509.Certificate, key: rsa.RSAPrivateKey, cert_path: Path,
                   application_uri: str) -> None:
    """Why this pair cannot be used for `application_uri`, as DeviceConfigInvalid."""
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise DeviceConfigInvalid(
            f"certificate {cert_path}: valid from {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, not now; supply a current one")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if application_uri not in uris:
        raise DeviceConfigInvalid(
            f"certificate {cert_path} is for application URI {uris or 'none'}, the endpoint's "
            f"application_uri is {application_uri!r}: set application_uri to the "
            "certificate's, or supply a certificate for it (a supplied certificate is never "
            "replaced)")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise DeviceConfigInvalid(f"certificate {cert_path} does not belong to the private key")


def _self_signed(key: rsa.RSAPrivateKey, application_uri: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cityops edge agent")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # servers with a slightly slow clock
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(application_uri), x509.DNSName(socket.gethostname())]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start (never world-readable for a moment), failing if
    it appeared meanwhile rather than overwriting it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def create(cert_path: Path, key_path: Path, application_uri: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _self_signed(key, application_uri)
    pem = key_path.suffix.lower() == ".pem"
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM if pem else serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    encoding = serialization.Encoding.PEM if cert_path.suffix.lower() == ".pem" \
        else serialization.Encoding.DER
    _write_new(key_path, key_bytes, 0o600)
    _write_new(cert_path, cert.public_bytes(encoding), 0o644)


def load_or_create(cert_path: Path, key_path: Path, application_uri: str) -> Credentials:
    """The pair to connect with; made once when both files are missing (blocking: call it in a
    thread)."""
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if have_cert != have_key:
        present, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise DeviceConfigInvalid(
            f"{present} exists but {missing} does not: supply both, or neither to have a "
            "self-signed pair made (an existing file is never replaced)")
    if not have_cert:
        create(cert_path, key_path, application_uri)
    cert, key = load_certificate(cert_path), load_private_key(key_path)
    check_supplied(cert, key, cert_path, application_uri)
    return Credentials(
        cert.public_bytes(serialization.Encoding.DER),
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()))
