"""The port through which a ``CallSession`` acts on the phone call itself.

The telephony layer implements it (Twilio REST: redirect the live call to ``<Dial>``,
hang up, send the privacy-notice SMS through ``integrations/``). Transfers are
asynchronous: ``transfer`` only starts one, and the runtime later reports the outcome
with ``CallSession.transfer_result``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

TransferMode = Literal["cold", "warm"]
TransferStatus = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled"]
TRANSFER_CONNECTED: frozenset[str] = frozenset({"completed", "answered"})


@dataclass(frozen=True)
class TransferRequest:
    """Hand the caller to a human; ``target`` None means the tenant's forwarding number."""

    mode: TransferMode = "cold"
    target: str | None = None
    summary: str = ""

    @classmethod
    def from_action_data(cls, data: Mapping[str, Any]) -> TransferRequest:
        mode: TransferMode = "warm" if data.get("mode") == "warm" else "cold"
        target = data.get("target")
        summary = data.get("summary")
        return cls(mode=mode, target=target if isinstance(target, str) and target else None,
                   summary=summary if isinstance(summary, str) else "")


class CallControl(Protocol):
    """Carrier-side actions on the live call."""

    async def transfer(self, request: TransferRequest) -> None:
        """Start a transfer; the outcome arrives later via ``CallSession.transfer_result``."""
        ...

    async def hang_up(self) -> None:
        """End the call; must be idempotent (an already-ended call counts as done)."""
        ...

    async def send_privacy_link(self) -> None:
        """Send the caller a text message with the link to the full privacy notice (R-11.2)."""
        ...
