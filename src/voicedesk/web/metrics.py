"""Prometheus metrics (names are a fixed interface, DESIGN.md); no personal data in labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.25, 0.5, 0.65, 0.75, 0.85, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)


class Metrics:
    """All metrics of one app instance, in their own registry (tests create many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.voice_to_voice = Histogram(
            "voicedesk_voice_to_voice_seconds", "Caller's last voiced frame to first reply audio frame sent",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.turn_stage = Histogram(
            "voicedesk_turn_stage_seconds", "Per-turn stage durations", ["stage"], buckets=STAGE_BUCKETS,
            registry=self.registry)
        self.active_calls = Gauge("voicedesk_active_calls", "Calls with an open media stream",
                                  registry=self.registry)
        self.media_dropped = Counter("voicedesk_media_messages_dropped_total",
                                     "Malformed or out-of-order media-stream messages dropped", ["reason"],
                                     registry=self.registry)
        self.webhooks_refused = Counter("voicedesk_webhooks_refused_total", "Webhooks refused", ["reason"],
                                        registry=self.registry)
        self.speculative_stt = Counter(
            "voicedesk_speculative_stt_total",
            "Transcriptions started at a pause in the caller's turn, by outcome: used, stale, failed",
            ["outcome"], registry=self.registry)
        self.calls_total = Counter("voicedesk_calls_total", "Calls by final status", ["status"],
                                   registry=self.registry)
