"""Processors (Art. 28 GDPR) that outbound adapters hand personal data to.

Every adapter that sends personal data out exposes a ``processor`` attribute; the privacy
registry (Art. 30 records, the processor list shown to tenants) is derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Processor:
    """Who receives data, why, where it is processed, and which kinds of data."""

    name: str
    purpose: str
    location: str
    data_categories: tuple[str, ...]
    transfer_safeguard: str | None = None  # e.g. "EU SCC" for a transfer outside the EEA
