"""TwiML documents voicedesk answers with, built with the official SDK's ``VoiceResponse``.

Every builder returns the complete XML text (``<?xml …?><Response>…</Response>``) to send
with ``Content-Type: text/xml`` (``CONTENT_TYPE``) or to pass as ``Twiml=`` to the REST API.

The call flow these documents implement::

    incoming call ─> connect_stream ──(socket closed by us)──> Connect action ─> hangup
                      │ transfer requested (REST update of the live call)
                      ├─ cold_transfer ─┐                       ┌─> DialCallStatus completed ─> hangup
                      └─ warm_transfer ─┴─> Dial action ────────┤
                          (callee hears whisper first)          └─> no-answer/busy/failed ─> back_to_assistant

Builders validate what Twilio would otherwise reject at call time (``wss`` stream URL
without query string, parameter sizes, E.164 numbers) and raise ``InvalidInputError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

from twilio.twiml.voice_response import VoiceResponse

from voicedesk.domain.errors import InvalidInputError

CONTENT_TYPE: Final = "text/xml; charset=utf-8"
MAX_SAY_CHARS: Final = 4096
MAX_PARAMETER_CHARS: Final = 500
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")

TransferOutcome = Literal["connected", "no-answer", "busy", "failed", "canceled"]


def _xml(response: VoiceResponse) -> str:
    return str(response.to_xml(xml_declaration=True))


def _e164(number: str, field: str) -> str:
    if not _E164.fullmatch(number):
        raise InvalidInputError("not an E.164 phone number", field=field)
    return number


def _add_stream(
    response: VoiceResponse,
    stream_url: str,
    parameters: Mapping[str, str],
    *,
    action_url: str | None,
    status_callback_url: str | None,
    name: str | None,
) -> None:
    if not stream_url.startswith(("wss://", "ws://")) or "?" in stream_url or "#" in stream_url:
        # Twilio strips query strings from stream URLs and may fail the handshake (error 31920).
        raise InvalidInputError("stream URL must be wss:// without a query string", field="stream_url")
    for key, value in parameters.items():
        if len(key) + len(value) >= MAX_PARAMETER_CHARS:
            raise InvalidInputError("stream parameter too long for Twilio", field=key)
    connect = response.connect(action=action_url) if action_url else response.connect()
    stream_attrs: dict[str, str] = {"url": stream_url}
    if name:
        stream_attrs["name"] = name
    if status_callback_url:
        stream_attrs["status_callback"] = status_callback_url
    stream = connect.stream(**stream_attrs)
    for key, value in parameters.items():
        stream.parameter(name=key, value=value)


def connect_stream(
    stream_url: str,
    parameters: Mapping[str, str],
    *,
    action_url: str | None = None,
    status_callback_url: str | None = None,
    name: str | None = None,
) -> str:
    """Answer the call and bridge it to our media WebSocket (bidirectional).

    ``parameters`` arrive in the ``start`` message's ``customParameters`` (the call token
    belongs there, never in the URL). With ``action_url``, Twilio requests it when we close
    the socket; without, closing the socket ends the call.
    """
    response = VoiceResponse()
    _add_stream(
        response, stream_url, parameters,
        action_url=action_url, status_callback_url=status_callback_url, name=name,
    )
    return _xml(response)


def back_to_assistant(
    stream_url: str,
    parameters: Mapping[str, str],
    *,
    action_url: str | None = None,
    notice: str | None = None,
    language: str = "de-DE",
) -> str:
    """After a failed transfer: optionally say ``notice``, then a *new* ``<Connect><Stream>``.

    The new stream needs a fresh call token (the first one was used on the first stream).
    """
    response = VoiceResponse()
    if notice:
        response.say(notice[:MAX_SAY_CHARS], language=language)
    _add_stream(
        response, stream_url, parameters,
        action_url=action_url, status_callback_url=None, name=None,
    )
    return _xml(response)


def reject(reason: Literal["rejected", "busy"] = "rejected") -> str:
    """Refuse an incoming call before answering (no charge): blocked caller, no capacity."""
    response = VoiceResponse()
    response.reject(reason=reason)
    return _xml(response)


def busy() -> str:
    """Refuse with a busy tone."""
    return reject("busy")


def _dial(
    response: VoiceResponse,
    number: str,
    *,
    caller_id: str,
    timeout_s: int,
    action_url: str,
    whisper_url: str | None,
    time_limit_s: int | None,
) -> None:
    if not 5 <= timeout_s <= 600:
        raise InvalidInputError("ring timeout must be 5..600 s", field="timeout_s")
    attrs: dict[str, str | int] = {
        "caller_id": _e164(caller_id, "caller_id"),
        "timeout": timeout_s,
        "action": action_url,
        "method": "POST",
    }
    if time_limit_s is not None:
        attrs["time_limit"] = time_limit_s
    dial = response.dial(**attrs)
    target = _e164(number, "number")
    if whisper_url:
        dial.number(target, url=whisper_url, method="POST")
    else:
        dial.number(target)


def cold_transfer(
    number: str,
    *,
    caller_id: str,
    action_url: str,
    timeout_s: int = 20,
    time_limit_s: int | None = None,
) -> str:
    """Ring ``number`` and bridge the caller straight through.

    ``caller_id`` must be one of the tenant's Twilio numbers (or a verified id). Twilio posts
    ``DialCallStatus`` to ``action_url`` when the dialled leg ends or fails: see
    ``transfer_outcome``.
    """
    response = VoiceResponse()
    _dial(response, number, caller_id=caller_id, timeout_s=timeout_s, action_url=action_url,
          whisper_url=None, time_limit_s=time_limit_s)
    return _xml(response)


def warm_transfer(
    number: str,
    *,
    caller_id: str,
    action_url: str,
    whisper_url: str,
    timeout_s: int = 20,
    time_limit_s: int | None = None,
) -> str:
    """Like ``cold_transfer``, but the callee first hears ``whisper_url``'s TwiML (``whisper``)
    while the caller keeps ringing; they are bridged when that TwiML ends."""
    response = VoiceResponse()
    _dial(response, number, caller_id=caller_id, timeout_s=timeout_s, action_url=action_url,
          whisper_url=whisper_url, time_limit_s=time_limit_s)
    return _xml(response)


def whisper(summary: str, *, language: str = "de-DE", voice: str | None = None) -> str:
    """What the human hears before being connected: a one-sentence summary of the call."""
    response = VoiceResponse()
    if voice:
        response.say(summary[:MAX_SAY_CHARS], language=language, voice=voice)
    else:
        response.say(summary[:MAX_SAY_CHARS], language=language)
    return _xml(response)


def say_and_hang_up(text: str, *, language: str = "de-DE") -> str:
    """A last sentence, then end the call (e.g. when the assistant cannot serve the call)."""
    response = VoiceResponse()
    response.say(text[:MAX_SAY_CHARS], language=language)
    response.hangup()
    return _xml(response)


def hang_up() -> str:
    """End the call."""
    response = VoiceResponse()
    response.hangup()
    return _xml(response)


def transfer_outcome(dial_call_status: str) -> TransferOutcome:
    """Map the ``DialCallStatus`` posted to the Dial ``action`` URL.

    ``connected`` means the human answered (the call is over when the action is requested:
    answer with ``hang_up``); anything else goes ``back_to_assistant`` to take a message.
    An unknown value counts as ``failed``.
    """
    match dial_call_status:
        case "completed" | "answered":
            return "connected"
        case "no-answer":
            return "no-answer"
        case "busy":
            return "busy"
        case "canceled":
            return "canceled"
        case _:
            return "failed"
