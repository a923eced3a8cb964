"""The platform's one error tree; vendor errors are translated into it inside adapters."""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every error CityOps raises on purpose."""

    code = "platform_error"
    retryable = False

    def __init__(self, detail: str, **context: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class ConfigError(PlatformError):
    """A config file or setting is invalid; raised at start only."""

    code = "config_invalid"


class NotFound(PlatformError):
    """A named thing does not exist."""

    code = "not_found"


class Conflict(PlatformError):
    """The request contradicts the current state."""

    code = "conflict"


class InvalidInput(PlatformError):
    """Input was understood but is not acceptable."""

    code = "invalid_input"


class StackError(PlatformError):
    """The local stack could not be installed, started or stopped."""

    code = "stack_error"


class DeviceError(PlatformError):
    """Something went wrong talking to a device."""

    code = "device_error"


class DeviceUnreachable(DeviceError):
    """The device did not answer: connection refused, reset or timed out."""

    code = "device_unreachable"
    retryable = True


class DeviceRejected(DeviceError):
    """The device answered with an error (Modbus exception, OPC-UA Bad status)."""

    code = "device_rejected"


class DecodeError(DeviceError):
    """Bytes from a device did not fit the point's data type."""

    code = "decode_error"


class DeviceAuthRefused(DeviceError):
    """The device refused the agent's credentials (user, password, certificate); retrying
    soon cannot help, so the agent waits `context["retry_after_s"]` between attempts."""

    code = "device_auth_refused"


class DeviceConfigInvalid(DeviceError):
    """The device's config cannot work with this device or host (a certificate that does not
    match, a namespace the server lacks): an operator must change it."""

    code = "device_config_invalid"


class WireError(PlatformError):
    """A message does not follow the wire contract."""

    code = "wire_invalid"


class BrokerUnavailable(PlatformError):
    """The MQTT broker cannot be reached or refused the session."""

    code = "broker_unavailable"
    retryable = True


class SinkUnavailable(PlatformError):
    """The database cannot be reached."""

    code = "sink_unavailable"
    retryable = True


class StoreRejected(PlatformError):
    """The database refused the data itself (a value out of range...), not the connection."""

    code = "store_rejected"


class AuthError(PlatformError):
    """The caller is not authenticated."""

    code = "unauthenticated"


class SecondFactorRequired(AuthError):
    """The password was right; the login needs the user's TOTP code (or a recovery code)."""

    code = "second_factor_required"


class PasswordExpired(AuthError):
    """The password was right but is older than the policy allows: set a new one."""

    code = "password_expired"


class Forbidden(PlatformError):
    """The caller is authenticated but its role does not allow this."""

    code = "forbidden"


class TooManyAttempts(PlatformError):
    """Too many failed logins for an account or from an address; retry after
    `context["retry_after_s"]` seconds."""

    code = "too_many_attempts"
    retryable = True


class CloudError(PlatformError):
    """The cloud or a configuration run failed."""

    code = "cloud_error"


class ProviderError(CloudError):
    """The cloud API refused or failed a request."""

    code = "provider_error"


class QuotaExceeded(ProviderError):
    """The project's quota does not allow the request."""

    code = "quota_exceeded"


class ProviderUnavailable(ProviderError):
    """The cloud API does not answer."""

    code = "provider_unavailable"
    retryable = True


class PlaybookFailed(CloudError):
    """An Ansible run did not succeed on every host."""

    code = "playbook_failed"


class SourceError(PlatformError):
    """A department system a sync reads from failed: unreachable, refused the credentials,
    lacks the table, or sent what is not what it claims (datafoundation/)."""

    code = "source_error"


class SourceUnavailable(SourceError):
    """The source did not answer; a later attempt may succeed."""

    code = "source_unavailable"
    retryable = True


class SyncRejected(PlatformError):
    """A sync stopped on purpose: schema drift under a frozen contract, a cursor with NULLs,
    a key that is not unique. The message names the source, table and row."""

    code = "sync_rejected"


class ModelFailed(PlatformError):
    """A layer model (数据治理) did not build: its declaration is wrong, its SQL failed, or an
    upstream dataset failed. The message names the model and the dataset; the target keeps
    its previous contents."""

    code = "model_failed"
