"""The channel plugins by kind. Built here, where the implementations are imported, so a plugin
never imports the registry (no import circle); add a kind by adding its module and a line."""

from __future__ import annotations

from cityops.errors import InvalidInput
from notifications.channels.base import Channel, StrictConfig
from notifications.channels.dingtalk import Dingtalk
from notifications.channels.email import Email
from notifications.channels.feishu import Feishu
from notifications.channels.sms import Sms
from notifications.channels.wecom import Wecom

CHANNELS: dict[str, Channel] = {c.kind: c() for c in (Email, Wecom, Dingtalk, Feishu, Sms)}


def plugin(kind: str) -> Channel:
    try:
        return CHANNELS[kind]
    except KeyError:
        raise InvalidInput(f"kind: unknown channel kind {kind!r}; one of "
                               f"{', '.join(sorted(CHANNELS))}") from None


def parse(kind: str, config: dict, secret: dict) -> tuple[StrictConfig, StrictConfig]:
    """Validate a channel's settings, naming the field that is wrong."""
    from pydantic import ValidationError

    channel = plugin(kind)
    out = []
    for part, model, data in (("config", channel.Config, config),
                              ("secret", channel.Secret, secret)):
        try:
            out.append(model.model_validate(data))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in (part, *first["loc"]))
            raise InvalidInput(f"{where}: {first['msg']}") from None
    return out[0], out[1]
