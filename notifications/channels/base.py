"""What every channel plugin shares: the message, the provider's answer, the plugin's shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str

    @property
    def text(self) -> str:
        return f"【{self.title}】\n{self.body}"


@dataclass(frozen=True)
class Answer:
    """The provider's answer, kept in the delivery log as it came."""

    ok: bool
    status: int | None
    text: str


class StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


# a provider's address: http(s) only (a file: or other scheme is refused when the channel is
# added, not when the first alarm is due)
WEB_URL = Field(pattern=r"^https?://[^\s/]+", max_length=500)


class Channel(Protocol):
    kind: ClassVar[str]
    Config: ClassVar[type[StrictConfig]]
    Secret: ClassVar[type[StrictConfig]]

    async def send(self, config: StrictConfig, secret: StrictConfig, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer: ...


def json_answer(response: httpx.Response, code_field: str) -> Answer:
    """Group robots answer HTTP 200 with an error code in the body: 0 is success."""
    text = response.text[:2000]
    try:
        code = response.json().get(code_field)
    except ValueError:
        code = None
    return Answer(response.status_code == 200 and code == 0, response.status_code, text)
