"""One handler: the ``VoicedeskError`` tree → HTTP status + ``{"code", "msg", ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from voicedesk.domain.errors import VoicedeskError

STATUS_BY_CODE = {
    "not_found": 404,
    "permission_denied": 403,
    "unauthenticated": 401,
    "invalid_input": 422,
    "invalid_profile": 422,
    "conflict": 409,
    "consent_required": 409,
    "legal_hold": 409,
    "erased": 410,
    "config": 503,
    "integrity": 500,
    "provider": 502,
}
WS_CLOSE_BY_CODE = {"unauthenticated": 1008, "not_found": 1008, "invalid_input": 1003}


def status_for(error: VoicedeskError) -> int:
    return STATUS_BY_CODE.get(error.code, 500)


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, VoicedeskError):  # registered for VoicedeskError only
        raise exc
    return JSONResponse(status_code=status_for(exc), content=exc.to_dict())


def install_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(VoicedeskError, _handle)
