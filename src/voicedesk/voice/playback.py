"""What the caller has actually heard: a FIFO of marks sent after each sentence.

Twilio plays queued audio in order and echoes a mark once everything before it has played;
``clear`` flushes the queue and echoes all pending marks too. So a mark counts as *played*
only if it is echoed while it is still pending here; ``clear`` empties the FIFO first, and
the late echoes it causes are unknown names, ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingMark:
    """One sentence whose audio has been sent and whose mark has not come back yet."""

    name: str
    utterance_id: int
    sentence: str
    samples: int
    start_ms: int  # estimated stream time at which its audio starts playing

    def duration_ms(self, sample_rate: int) -> int:
        return self.samples * 1000 // sample_rate


@dataclass(frozen=True)
class Cut:
    """The sentence that was playing when playback was cleared, and how much of it played."""

    mark: PendingMark
    fraction: float

    def heard_words(self) -> str:
        words = self.mark.sentence.split()
        return " ".join(words[: int(len(words) * self.fraction)])


class Playback:
    """Tracks sent assistant audio against mark echoes, in stream time."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self._pending: deque[PendingMark] = deque()
        self._play_end_ms = 0  # estimated stream time when the carrier's queue runs dry
        self._last_echo_ms = 0
        self._counter = 0

    @property
    def pending(self) -> tuple[PendingMark, ...]:
        return tuple(self._pending)

    def pending_for(self, utterance_id: int) -> int:
        return sum(1 for m in self._pending if m.utterance_id == utterance_id)

    def audio_sent(self, samples: int, now_ms: int) -> int:
        """Account for ``samples`` queued at the carrier; returns their estimated start time."""
        start = max(now_ms, self._play_end_ms)
        self._play_end_ms = start + samples * 1000 // self.sample_rate
        return start

    def play_end_ms(self, now_ms: int) -> int:
        return max(now_ms, self._play_end_ms)

    def mark_sent(self, utterance_id: int, sentence: str, samples: int, start_ms: int) -> str:
        self._counter += 1
        name = f"u{utterance_id}-s{self._counter}"
        self._pending.append(PendingMark(name, utterance_id, sentence, samples, start_ms))
        return name

    def echoed(self, name: str, now_ms: int) -> list[PendingMark]:
        """A mark came back: return the marks now known played (FIFO up to ``name``)."""
        if all(m.name != name for m in self._pending):
            return []
        played: list[PendingMark] = []
        while self._pending:
            mark = self._pending.popleft()
            played.append(mark)
            if mark.name == name:
                break
        self._last_echo_ms = now_ms
        return played

    def clear(self, now_ms: int) -> tuple[list[PendingMark], Cut | None]:
        """Playback was flushed at ``now_ms``: return the unplayed marks and the cut one."""
        flushed = list(self._pending)
        self._pending.clear()
        self._play_end_ms = now_ms
        if not flushed:
            return [], None
        current = flushed[0]
        started = max(current.start_ms, self._last_echo_ms)
        duration = current.duration_ms(self.sample_rate)
        fraction = 0.0 if duration <= 0 else min(1.0, max(0.0, (now_ms - started) / duration))
        return flushed, Cut(current, fraction)
