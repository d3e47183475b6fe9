"""The one settings object, read from ``VOICEDESK_*`` environment variables (or ``.env``).

Built once at a composition root (``create_app``, the CLI callback) and passed down; nothing
below the entry points reads the environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicedesk.domain.errors import ConfigError

KEY_FILE_NAME = "master.key"
LOCAL_TWILIO_TOKEN_FILE = "twilio-local.token"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    """Deployment configuration. Names of the environment variables are a fixed interface."""

    model_config = SettingsConfigDict(env_prefix="VOICEDESK_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./voicedesk-data")
    database_url: str | None = Field(default=None, description="default: SQLite file in the data dir")
    keystore_url: str | None = Field(default=None, description="default: a second SQLite file")
    database_schema: str | None = Field(default=None, description="PostgreSQL schema for data")
    keystore_schema: str = Field(default="voicedesk_keys", description="PostgreSQL schema for keys")
    master_key: SecretStr | None = Field(default=None, description="base64 of 32 bytes; else the key file")
    public_url: str = "http://127.0.0.1:8000"
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="stable across restarts: a restarted instance closes its own calls left open; "
        "`serve` appends the port unless set explicitly",
    )

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_sms_from: str | None = Field(default=None, description="SMS sender: number, alphanumeric id or MG…")
    twilio_api_base: str | None = Field(default=None, description="override, e.g. a local fake")
    twilio_region: str | None = None
    twilio_edge: str | None = None

    stt_engine_en: Literal["whisper", "moonshine"] = Field(
        default="whisper",
        description="English STT: Whisper tiny.en, or Moonshine base (converted once into the data dir; "
        "bench/stt_compare.py: espeak WER 0.16 vs 0.38 but 1.6x the CPU, and it missed 'goodbye' in piper speech)",
    )
    dialogue_engine: Literal["rules", "llm"] = "rules"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 4.0

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"

    eu_only: bool = True
    log_level: str = "INFO"
    jobs_enabled: bool = True
    call_token_ttl_s: int = 120
    endpoint_hangover_ms: int = 600
    speculative_stt: bool = Field(
        default=True,
        description="transcribe a caller's turn at a pause of speculative_stt_ms, while the end-of-turn "
        "hangover still runs; used when the caller says nothing more (STT time hidden behind the hangover)",
    )
    speculative_stt_ms: int = Field(default=200, ge=1, description="pause that starts the speculative transcription")

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'voicedesk.db').resolve()}"

    @property
    def keys_url(self) -> str:
        if self.keystore_url:
            return self.keystore_url
        if self.database_url and self.database_url.startswith("postgresql"):
            # Same server, separate schema: never part of a data backup of the public schema.
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'keys.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def key_file(self) -> Path:
        return self.data_dir / KEY_FILE_NAME

    def twilio_token(self) -> str | None:
        """The Twilio auth token that signs webhooks: configured, else the local softphone's token.

        ``voicedesk init`` writes a random local token (0600) so that ``voicedesk call`` can act
        as Twilio toward a local server without any Twilio account.
        """
        if self.twilio_auth_token is not None:
            return self.twilio_auth_token.get_secret_value()
        path = self.data_dir / LOCAL_TWILIO_TOKEN_FILE
        return path.read_text().strip() if path.exists() else None

    def load_master_key(self) -> bytes:
        """The KEK: from ``VOICEDESK_MASTER_KEY`` or the 0600 key file; 32 bytes or a clear error."""
        if self.master_key is not None:
            raw = self.master_key.get_secret_value()
            source = "VOICEDESK_MASTER_KEY"
        elif self.key_file.exists():
            raw = self.key_file.read_text().strip()
            source = str(self.key_file)
        else:
            raise ConfigError(
                f"no master key: set VOICEDESK_MASTER_KEY or run `voicedesk init` to create {self.key_file}"
            )
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"master key from {source} is not valid base64") from None
        if len(key) != 32:
            raise ConfigError(f"master key from {source} must be 32 bytes (base64 of 32 random bytes)")
        return key


def write_key_file(path: Path) -> None:
    """Create a new random master key file readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")


def write_local_twilio_token(data_dir: Path) -> None:
    """Create the local softphone's webhook-signing token once (see ``Settings.twilio_token``)."""
    path = data_dir / LOCAL_TWILIO_TOKEN_FILE
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(24) + "\n")
