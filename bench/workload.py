"""The fixed work both servers do in the framework benchmark (numpy only).

Imported by voicedesk's stand-ins (``bench/standins.py``) and by the Pipecat peer
(``bench/peer/pipecat_server.py``, another venv), so both speak the same clip.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 8000
TRANSCRIPT = "I would like to book an appointment on Tuesday afternoon."
SENTENCE = "Certainly, Tuesday at three pm is free, shall I book it for you?"
CLIP_SECONDS = 1.0


def render_clip(seconds: float = CLIP_SECONDS) -> NDArray[np.int16]:
    """The pre-rendered stand-in TTS output: 8 kHz 16-bit, two tones at a speech-like level."""
    n = int(SAMPLE_RATE * seconds)
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.5 * (1 + np.sin(2 * math.pi * 3.0 * t))
    wave = (np.sin(2 * math.pi * 220 * t) + 0.5 * np.sin(2 * math.pi * 660 * t)) * envelope
    return (wave * 6000).astype(np.int16)
