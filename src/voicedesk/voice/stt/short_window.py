"""The short Whisper encoder window: pad each segment to its own length, not to 30 s.

faster-whisper pads every segment's log-mel features to 3000 frames (30 s) before the
encoder, so a 2 s phone turn pays for a 30 s encoder pass (tiny.en: 0.56 s of 0.7 s per
turn). CTranslate2 4.8.5 accepts shorter inputs. Padding to the segment's length + 100
frames, rounded up to 100, gives the same accuracy at a third of the time (speech.md,
"Short window": tiny.en beam 5, 0.21 s instead of 0.70 s per turn; a fixed 1000-frame
window truncated long turns and looped, so the window must fit the turn). The adapter
uses more padding than +100 against repeated phrases; see ``LocalWhisperSpeechToText``.

How it is done, and why it is contained:
- faster-whisper 1.2.1 pads through the module global ``faster_whisper.transcribe.pad_or_trim``;
  its sequential ``WhisperModel.transcribe`` path is the caller that matters. ``install()``
  replaces that global once with ``_fit_pad_or_trim``, which behaves exactly like the
  original unless the current context has entered ``fitted_window()``. Other users of
  faster-whisper in the process (batched pipeline, language detection, other libraries)
  keep the 30 s window.
- ``install()`` does nothing and returns ``False`` unless the installed faster-whisper and
  ctranslate2 are the pinned versions it was verified with (``PINNED``) and the global is
  still faster-whisper's own function. Callers then run with the full window: slower,
  never wrong. ``tests/integration/voice/test_stt_whisper.py`` fails when the pins move,
  so a version bump is re-verified deliberately.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PINNED = {"faster_whisper": "1.2.1", "ctranslate2": "4.8.5"}
FULL_WINDOW_FRAMES = 3000


@dataclass
class WindowProbe:
    """Records the encoder input length (mel frames) of every segment in a ``fitted_window``.

    ``extra_frames=None`` only records: segments keep the full 30 s window.
    """

    extra_frames: int | None
    frames: list[int] = field(default_factory=list)


_ACTIVE: contextvars.ContextVar[WindowProbe | None] = contextvars.ContextVar(
    "voicedesk_whisper_window", default=None)
_lock = threading.Lock()
_original: Callable[..., Any] | None = None


def fitted_length(content_frames: int, extra_frames: int) -> int:
    """Encoder input frames for a segment: content + extra, rounded up to 100, at most 3000."""
    return min(FULL_WINDOW_FRAMES, -(-(content_frames + extra_frames) // 100) * 100)


def _fit_pad_or_trim(array: Any, length: int = FULL_WINDOW_FRAMES, *, axis: int = -1) -> Any:
    if _original is None:
        raise RuntimeError("short_window.install() must run before the patched function is called")
    probe = _ACTIVE.get()
    if probe is not None and length == FULL_WINDOW_FRAMES:
        if probe.extra_frames is not None:
            length = fitted_length(int(array.shape[axis]), probe.extra_frames)
        probe.frames.append(length)
    return _original(array, length, axis=axis)


def versions_match() -> bool:
    """True when faster-whisper and ctranslate2 are the versions this patch was verified on."""
    import ctranslate2
    import faster_whisper

    return (faster_whisper.__version__, ctranslate2.__version__) == (
        PINNED["faster_whisper"], PINNED["ctranslate2"])


def install() -> bool:
    """Make ``fitted_window()`` effective; idempotent. ``False`` means: full window only."""
    global _original
    import faster_whisper.audio
    import faster_whisper.transcribe as fw_transcribe

    with _lock:
        if fw_transcribe.pad_or_trim is _fit_pad_or_trim:
            return True
        if not versions_match():
            log.warning("short Whisper window disabled: verified on %s, found faster-whisper %s",
                        PINNED, faster_whisper.__version__)
            return False
        if fw_transcribe.pad_or_trim is not faster_whisper.audio.pad_or_trim:
            log.warning("short Whisper window disabled: faster_whisper.transcribe.pad_or_trim "
                        "was already replaced by someone else")
            return False
        _original = fw_transcribe.pad_or_trim
        fw_transcribe.pad_or_trim = _fit_pad_or_trim
        return True


def installed() -> bool:
    import faster_whisper.transcribe as fw_transcribe

    return fw_transcribe.pad_or_trim is _fit_pad_or_trim


@contextlib.contextmanager
def fitted_window(extra_frames: int | None = 300) -> Iterator[WindowProbe]:
    """Within this block (same thread/context), Whisper segments get the short window.

    Enter it in the thread that consumes ``WhisperModel.transcribe``'s segment generator;
    the probe lists the window of each encoded segment.
    """
    probe = WindowProbe(extra_frames)
    token = _ACTIVE.set(probe)
    try:
        yield probe
    finally:
        _ACTIVE.reset(token)
