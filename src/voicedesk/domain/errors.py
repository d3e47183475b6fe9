"""The one exception tree of voicedesk.

Every error a user, caller or operator can cause is a ``VoicedeskError`` with a stable
``code``; the web layer maps codes to HTTP statuses in one place (``web/errors.py``), the
CLI prints ``msg`` without a traceback. Messages never contain personal data.

    VoicedeskError
    ├── NotFoundError            missing, or another tenant's (same error on purpose)
    ├── PermissionDeniedError
    ├── AuthenticationError      bad credentials, forged signature, bad token
    ├── InvalidInputError(field)
    │   └── ProfileError         a tenant profile that fails its schema
    ├── ConflictError            double booking, duplicate slug, state clash
    ├── ConsentRequiredError
    ├── LegalHoldError
    ├── ConfigError              wrong master key, unreachable database, missing engine
    ├── IntegrityError           audit chain broken, ciphertext tampered
    ├── ErasedError              the data key was destroyed (crypto-shredded)
    └── ProviderError(category)  an outside service failed (transient or permanent)
"""

from __future__ import annotations

import enum
from typing import Any


class VoicedeskError(Exception):
    """Base of all expected errors; ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, msg: str, **fields: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, **self.fields}


class NotFoundError(VoicedeskError):
    """The object does not exist or belongs to another tenant; callers cannot tell which."""

    code = "not_found"


class PermissionDeniedError(VoicedeskError):
    """The actor is known but its role does not allow the action."""

    code = "permission_denied"


class AuthenticationError(VoicedeskError):
    """Credentials, a webhook signature or a call token were missing or wrong."""

    code = "unauthenticated"


class InvalidInputError(VoicedeskError):
    """Input failed validation; ``field`` names the offending field."""

    code = "invalid_input"

    def __init__(self, msg: str, *, field: str | None = None, **fields: Any) -> None:
        super().__init__(msg, field=field, **fields)
        self.field = field


class ProfileError(InvalidInputError):
    """A tenant profile file does not match the schema."""

    code = "invalid_profile"


class ConflictError(VoicedeskError):
    """The action clashes with the current state (slot taken, slug in use, wrong state)."""

    code = "conflict"


class ConsentRequiredError(VoicedeskError):
    """The processing needs a consent that was not given or was withdrawn."""

    code = "consent_required"


class LegalHoldError(VoicedeskError):
    """A legal hold blocks deletion of the data concerned."""

    code = "legal_hold"


class ConfigError(VoicedeskError):
    """The deployment is misconfigured: key, database, engines, paths."""

    code = "config"


class IntegrityError(VoicedeskError):
    """Stored data failed an integrity check (audit chain, ciphertext authentication)."""

    code = "integrity"


class ErasedError(VoicedeskError):
    """The data belonged to a subject whose data key was destroyed; it can never be read."""

    code = "erased"


class ErrorCategory(enum.Enum):
    """Why a provider failed, and so whether retrying can help."""

    TIMEOUT = "timeout"
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"

    @property
    def is_permanent(self) -> bool:
        return self in {ErrorCategory.AUTH, ErrorCategory.BAD_REQUEST, ErrorCategory.NOT_FOUND,
                        ErrorCategory.UNAVAILABLE}


class ProviderError(VoicedeskError):
    """An outside service (carrier, speech engine, LLM, SMTP) failed."""

    code = "provider"

    def __init__(self, msg: str, *, category: ErrorCategory, provider: str, **fields: Any) -> None:
        super().__init__(msg, category=category.value, provider=provider, **fields)
        self.category = category
        self.provider = provider

    @property
    def is_permanent(self) -> bool:
        return self.category.is_permanent
