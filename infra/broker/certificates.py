"""Gateways' client certificates on the broker's TLS listener: a revoked gateway's certificates
go into the CRL the listener checks, so they cannot even finish a TLS handshake (before, a
revoke removed the ACL only, and the certificate still connected)."""

from __future__ import annotations

import logging

from infra.broker.process import Broker
from infra.tls.ca import LocalCA

log = logging.getLogger(__name__)


def revoke_certificates(broker: Broker, identity: str) -> int:
    """Every certificate the local CA issued to `identity` into the CRL; how many were new.
    Call before the broker's config is rewritten and reloaded (its copy of the CRL is made
    then, and SIGHUP makes Mosquitto re-read it). A county's own PKI (no `issuer`) keeps its
    CRL itself: nothing is done here."""
    tls = broker.tls
    if tls is None or tls.issuer is None or tls.crlfile is None:
        return 0
    ca = LocalCA(tls.issuer)
    if not ca.cert_path.exists():
        log.warning("broker %s: the issuing CA %s is gone; %s's certificates not revoked",
                    broker.state_dir, tls.issuer, identity)
        return 0
    revoked = ca.revoke(identity)
    if revoked:
        log.info("gateway %s: %d certificate(s) added to the CRL", identity, revoked)
    return revoked
