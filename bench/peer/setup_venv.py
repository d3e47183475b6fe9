"""Create ``bench/.peer-venv`` with the Pipecat peer (never a voicedesk dependency).

``pipecat-ai`` 1.14: the ``websocket`` extra brings FastAPI (for
``FastAPIWebsocketTransport``); the ``silero`` extra is empty since onnxruntime became a
core dependency, and the Silero ONNX model ships inside the wheel
(``pipecat/audio/vad/data/silero_vad.onnx``). ``TwilioFrameSerializer`` needs nothing
extra. uvicorn serves the app.

    python bench/peer/setup_venv.py [--python python3.11]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
VENV = BENCH / ".peer-venv"
PIPECAT = "pipecat-ai[silero,websocket]==1.14.0"
EXTRA = ["uvicorn>=0.32,<1"]


def peer_python() -> Path:
    return VENV / "bin" / "python"


def ensure(python: str = sys.executable) -> Path:
    """Create the venv and install the peer unless it already imports."""
    py = peer_python()
    if py.exists():
        probe = subprocess.run(
            [str(py), "-c", "import pipecat, uvicorn, fastapi; print(pipecat.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return py
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", PIPECAT, *EXTRA], check=True)
    return py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="interpreter that creates the venv")
    args = parser.parse_args()
    print(ensure(args.python))


if __name__ == "__main__":
    main()
