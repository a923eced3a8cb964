"""OPC-UA addressing and endpoints as validated data (docs/profiles.md, drivers/opcua/README.md).

Secrets never live in YAML: a password comes from an environment variable or a file, and the
agent's private key from a file path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# ns=<index>;<i|s|g|b>=<identifier>, nsu=<namespace URI>;<i|s|g|b>=<identifier> (resolved to
# the server's index at connect: indexes differ between servers), or a bare id in namespace 0
NODE_ID_PATTERN = r"^((ns=\d{1,5}|nsu=[^;\s]+);)?[isgb]=.+$"
NodeIdText = Field(pattern=NODE_ID_PATTERN, description="an OPC-UA NodeId, e.g. ns=2;s=Wall.Power "
                   "or nsu=urn:vendor:wall;s=Wall.Power")


class OpcUaAddress(BaseModel):
    """Where a point lives on an OPC-UA server; the monitored-item settings may override the
    endpoint's defaults per point."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: str = NodeIdText
    sampling_interval_ms: float | None = Field(None, ge=0)
    queue_size: int | None = Field(None, ge=1, le=1000)
    deadband: float | None = Field(None, ge=0, description="absolute deadband, numeric points")


class OpcUaMethodCall(BaseModel):
    """An OPC-UA method: the object it belongs to and the method node."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    object: str = NodeIdText
    method: str = NodeIdText
    # the Boolean output argument that says whether the device did it; a false value makes the
    # command `failed`. Without it, a Boolean output named ok, success or succeeded counts
    ok_output: str | None = Field(None, description="name of the method's Boolean success output")


class OpcUaEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: Literal["opcua"]
    url: str = Field(pattern=r"^opc\.tcp://[^/\s]+(/.*)?$")
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    # the agent's own certificate and key (PEM or DER); created self-signed when missing
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = Field(None, description="pin the server's certificate")
    application_uri: str = "urn:cityops:edge-agent"
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    mode: Literal["subscribe", "poll"] = Field(
        "subscribe", description="poll: for servers whose subscriptions cannot be trusted"
    )
    publishing_interval_ms: float = Field(500, gt=0, le=60000)
    sampling_interval_ms: float = Field(250, ge=0, le=60000)
    queue_size: int = Field(1, ge=1, le=1000)
    deadband: float = Field(0, ge=0)
    batch_size: int = Field(500, ge=1, le=10000, description="monitored items per request")
    watchdog_interval_s: float = Field(5.0, gt=0, le=60, description="probe a quiet server")
    # how long the server keeps a session the agent abandoned (crash, kill -9, lost network):
    # servers have few session slots, and libraries ask for an hour by default
    session_timeout_s: float = Field(30.0, ge=1, le=3600)
    # wait between attempts once the server refused the credentials or certificate
    auth_retry_s: float = Field(300.0, ge=1, le=86400)

    @model_validator(mode="after")
    def _security_consistent(self) -> OpcUaEndpoint:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode are both None or both set")
        secure = self.security_policy != "None"
        if secure and (self.certificate is None or self.private_key is None):
            raise ValueError("a secure endpoint needs `certificate` and `private_key` paths")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs `username`")
        return self

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        if self.password_env:
            return os.environ.get(self.password_env)
        return None
