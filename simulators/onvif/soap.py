"""SOAP 1.2 envelopes, WS-Security UsernameToken checks and HTTP digest for the ONVIF simulator.

Written from the specs: SOAP 1.2 (W3C), the WS-Security UsernameToken Profile 1.0 (OASIS:
PasswordDigest = Base64(SHA-1(nonce + created + password)), the nonce sent Base64-encoded),
the ONVIF Core Specification's faults (env:Sender / ter:NotAuthorized) and RFC 7616 (HTTP
digest, MD5, qop=auth) for the snapshot URI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from lxml import etree

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = ("http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-wssecurity-secext-1.0.xsd")
WSU = ("http://docs.oasis-open.org/wss/2004/01/"
       "oasis-200401-wss-wssecurity-utility-1.0.xsd")
DIGEST_TYPE = ("http://docs.oasis-open.org/wss/2004/01/"
               "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
NAMESPACES = {
    "env": SOAP_ENV,
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "ter": "http://www.onvif.org/ver10/error",
    "tns1": "http://www.onvif.org/ver10/topics",
}
CLOCK_SKEW = timedelta(minutes=5)  # a Created time further off is refused (replays)


class SoapFault(Exception):
    def __init__(self, subcode: str, reason: str, code: str = "env:Sender",
                 status: int = 400) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.status = code, subcode, reason, status


def parse(body: bytes) -> tuple[etree._Element | None, etree._Element]:
    """(the Header, the first child of the Body) of a request envelope."""
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as err:
        raise SoapFault("ter:WellFormed", f"not XML: {err}") from err
    header = root.find(f"{{{SOAP_ENV}}}Header")
    bodies = root.find(f"{{{SOAP_ENV}}}Body")
    if bodies is None or len(bodies) == 0:
        raise SoapFault("ter:WellFormed", "no SOAP 1.2 Body")
    return header, bodies[0]


def check_username_token(header: etree._Element | None, users: dict[str, str],
                         clock: datetime | None = None) -> str:
    """The user a request's UsernameToken digest proves, or SoapFault NotAuthorized."""
    token = None if header is None else header.find(f".//{{{WSSE}}}UsernameToken")
    if token is None:
        raise SoapFault("ter:NotAuthorized", "Sender not Authorized: no UsernameToken")
    user = token.findtext(f"{{{WSSE}}}Username") or ""
    password = token.find(f"{{{WSSE}}}Password")
    nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
    created = token.findtext(f"{{{WSU}}}Created") or ""
    if user not in users or password is None:
        raise SoapFault("ter:NotAuthorized", "Sender not Authorized")
    if password.get("Type") != DIGEST_TYPE:
        raise SoapFault("ter:NotAuthorized", "Sender not Authorized: PasswordDigest required")
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        expected = base64.b64encode(hashlib.sha1(  # noqa: S324 - the profile's algorithm
            base64.b64decode(nonce) + created.encode() + users[user].encode()).digest()).decode()
    except ValueError as err:
        raise SoapFault("ter:NotAuthorized", f"Sender not Authorized: {err}") from err
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if abs((clock or datetime.now(UTC)) - when) > CLOCK_SKEW:
        raise SoapFault("ter:NotAuthorized", "Sender not Authorized: Created out of range")
    if not hmac.compare_digest(expected, (password.text or "").strip()):
        raise SoapFault("ter:NotAuthorized", "Sender not Authorized")
    return user


def envelope(body: str, action: str = "") -> bytes:
    declared = " ".join(f'xmlns:{k}="{v}"' for k, v in NAMESPACES.items())
    header = (f"<env:Header><wsa:Action>{action}</wsa:Action></env:Header>" if action else "")
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {declared}>{header}'
            f"<env:Body>{body}</env:Body></env:Envelope>").encode()


def fault(err: SoapFault) -> bytes:
    return envelope(
        f"<env:Fault><env:Code><env:Value>{err.code}</env:Value><env:Subcode><env:Value>"
        f"{err.subcode}</env:Value></env:Subcode></env:Code><env:Reason>"
        f'<env:Text xml:lang="en">{_escape(err.reason)}</env:Text></env:Reason></env:Fault>')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xsd_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DigestGuard:
    """HTTP digest (RFC 7616, MD5, qop=auth) in front of the snapshot URI; basic too when
    `basic` is set (some cameras take only one of them)."""

    def __init__(self, users: dict[str, str], realm: str = "cityops-camera",
                 basic: bool = False) -> None:
        self.users, self.realm, self.basic = users, realm, basic
        self._nonces: set[str] = set()

    def challenge(self) -> str:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def allows(self, method: str, authorization: str) -> bool:
        if self.basic and authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            return self.users.get(user) == password
        if not authorization.startswith("Digest "):
            return False
        fields = _digest_fields(authorization[7:])
        user, nonce = fields.get("username", ""), fields.get("nonce", "")
        if user not in self.users or nonce not in self._nonces:
            return False
        ha1 = _md5(f"{user}:{self.realm}:{self.users[user]}")
        ha2 = _md5(f"{method}:{fields.get('uri', '')}")
        expected = _md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
                        f"auth:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 7616's MD5


def _digest_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _split_commas(text):
        key, _, value = part.strip().partition("=")
        fields[key.strip()] = value.strip().strip('"')
    return fields


def _split_commas(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]
