"""The LLM dialogue engine: OpenAI-compatible chat completions with tool calls.

Works with any server that speaks ``POST {base_url}/chat/completions`` with ``tools``
(OpenAI, Mistral, Azure OpenAI, Ollama, vLLM, llama.cpp). The model talks; everything that
touches the business goes through the same ``DialogueTools`` the rule engine uses, and
dates are resolved by our own parser (the model passes the caller's words, e.g. "next
Tuesday after 3"), so availability and date arithmetic never depend on the model.

Failure never reaches the caller: a timeout, a transport or HTTP error (translated to
``ProviderError``), a malformed answer or an exhausted turn budget hands that turn to the
rule engine; after ``max_failures`` failed turns in a row the rest of the call stays on it.

No-training / no-logging options sent per provider (R-12.1):

==========  =====================================================================
provider    what is sent and why
==========  =====================================================================
openai      ``"store": false`` — the completion is not stored for evals/distillation
            (API data is not used for training by default; nothing to opt out of)
azure       nothing in the request: Azure OpenAI does not train on customer data;
            abuse-monitoring opt-out is a contract setting of the Azure resource
mistral     nothing in the request: the API has no per-request switch; the training
            opt-out is an organisation setting in the Mistral console
ollama      nothing: a local server, no data leaves the machine
vllm        nothing: a local server
llamacpp    nothing: a local server
generic     nothing (unknown provider: no guessing of vendor fields)
==========  =====================================================================
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from babel.dates import format_datetime

from voicedesk.dialogue.engine import Action, CallerContext, ConversationLog, Expectation, Intent, Reply, Turn
from voicedesk.dialogue.faq import answer_faq
from voicedesk.dialogue.rules import RuleConversation, RuleEngine
from voicedesk.dialogue.rules.extract import default_region, extract_phone
from voicedesk.dialogue.rules.phrases import say
from voicedesk.dialogue.speech import say_datetime
from voicedesk.dialogue.tools import DialogueTools, DsarKind, Preferences, Urgency
from voicedesk.domain.availability import opening_hours_text
from voicedesk.domain.errors import ConflictError, ErrorCategory, NotFoundError, ProviderError, VoicedeskError
from voicedesk.domain.profile import TenantProfile, normalize_e164
from voicedesk.domain.when import parse_when

Provider = Literal["openai", "azure", "mistral", "ollama", "vllm", "llamacpp", "generic"]

PRIVACY_OPTIONS: Mapping[Provider, Mapping[str, Any]] = {
    "openai": {"store": False},
    "azure": {},
    "mistral": {},
    "ollama": {},
    "vllm": {},
    "llamacpp": {},
    "generic": {},
}


@dataclasses.dataclass(frozen=True)
class LlmSettings:
    """How to reach the model; built by the composition root from ``Settings``."""

    base_url: str  # e.g. "https://api.openai.com/v1" or "http://127.0.0.1:11434/v1"
    model: str
    api_key: str | None = None
    provider: Provider | Literal["auto"] = "auto"  # "auto": recognised from base_url
    timeout_s: float = 8.0  # per caller turn, all model round-trips together
    turn_budget: int = 4  # model round-trips (tool loops) per caller turn
    max_failures: int = 2  # failed turns in a row before the call stays on the rule engine
    temperature: float = 0.2
    azure_api_version: str = "2024-10-21"
    processor_name: str = "LLM provider"
    processor_location: str | None = None

    @property
    def resolved_provider(self) -> Provider:
        """The provider, recognised from the URL when ``provider="auto"``."""
        if self.provider != "auto":
            return self.provider
        host = httpx.URL(self.base_url).host
        port = httpx.URL(self.base_url).port
        if host == "api.openai.com":
            return "openai"
        if host.endswith(".openai.azure.com"):
            return "azure"
        if host == "api.mistral.ai":
            return "mistral"
        if port == 11434:
            return "ollama"
        return "generic"


class _BudgetExhaustedError(Exception):
    """The model kept calling tools past the turn budget."""


def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


def tool_schemas(profile: TenantProfile) -> list[dict[str, Any]]:
    """JSON schemas of the tools offered to the model."""
    service_ids = [s.id for s in profile.services]
    staff_ids = [s.id for s in profile.staff]
    service = {"type": "string", "enum": service_ids, "description": "service id"}
    staff: dict[str, Any] = {"type": "string", "description": "staff id, only if the caller asked for someone"}
    if staff_ids:
        staff["enum"] = staff_ids
    return [
        _schema(
            "find_slots",
            "Free appointment slots. Pass the caller's own words for the time; dates are resolved for you.",
            {
                "service_id": service,
                "when": {
                    "type": "string",
                    "description": "the caller's wish as said, e.g. 'next Tuesday after 3', 'morgen Vormittag', "
                    "'as soon as possible'",
                },
                "staff_id": staff,
            },
            ["service_id", "when"],
        ),
        _schema(
            "book",
            "Book a slot returned by find_slots, only after reading it back and the caller said yes.",
            {
                "service_id": service,
                "start": {"type": "string", "description": "ISO-8601 start exactly as returned by find_slots"},
                "staff_id": staff,
                "name": {"type": "string"},
                "phone": {"type": "string", "description": "only if different from the caller's number"},
                "email": {"type": "string"},
                "preferences": {"type": "string", "description": "wishes as said, e.g. 'mornings, not Friday'"},
            },
            ["service_id", "start", "name"],
        ),
        _schema(
            "find_caller_appointments",
            "The caller's upcoming appointments (by their number; pass a name if the number is withheld).",
            {"name": {"type": "string"}},
            [],
        ),
        _schema(
            "cancel",
            "Cancel an appointment after the caller confirmed.",
            {"appointment_id": {"type": "string"}},
            ["appointment_id"],
        ),
        _schema(
            "reschedule",
            "Move an appointment to a slot returned by find_slots, after the caller confirmed.",
            {"appointment_id": {"type": "string"}, "new_start": {"type": "string"}, "staff_id": staff},
            ["appointment_id", "new_start"],
        ),
        _schema(
            "take_message",
            "Leave a message / callback request for the staff.",
            {
                "name": {"type": "string"},
                "phone": {"type": "string", "description": "callback number as said; omit for the caller's"},
                "reason": {"type": "string"},
                "urgency": {"type": "string", "enum": ["normal", "high"]},
            },
            ["reason"],
        ),
        _schema(
            "record_dsar_request",
            "The caller asks to see, correct, delete, restrict, object to or export their personal data.",
            {
                "kind": {
                    "type": "string",
                    "enum": ["access", "rectification", "erasure", "restriction", "objection", "portability"],
                },
                "email": {"type": "string"},
                "phone": {"type": "string"},
            },
            ["kind"],
        ),
        _schema(
            "answer_faq",
            "Look up opening hours, address, prices or other questions in the business profile.",
            {"question": {"type": "string"}},
            ["question"],
        ),
        _schema(
            "transfer_to_human",
            "Hand the call to a member of staff.",
            {
                "reason": {
                    "type": "string",
                    "enum": ["caller_request", "cannot_help", "decision_needed", "complaint", "emergency"],
                },
                "summary": {"type": "string", "description": "one sentence for the staff member"},
            },
            ["reason", "summary"],
        ),
        _schema("end_call", "End the call after saying goodbye.", {}, []),
    ]


def system_prompt(ctx: CallerContext) -> str:
    """The instructions for one call, built from the business profile (no secrets, no other callers)."""
    profile = ctx.profile
    lang = ctx.language
    language = "German (Sie-Form)" if lang == "de" else "English"
    now = ctx.now.astimezone(profile.tz)
    services = "; ".join(
        f"{s.id}: {profile.text(s.name, lang)} ({s.duration_min} min"
        + (f", {profile.text(s.price, lang)}" if s.price else "")
        + ")"
        for s in profile.services
    )
    faq = " ".join(f"[{e.id}] {profile.text(e.answer, lang)}" for e in profile.faq)
    caller = f"The caller's number is {ctx.caller_number}." if ctx.caller_number else "The caller's number is withheld."
    known = f" The caller is known as {ctx.known_name}." if ctx.known_name else ""
    return "\n".join(
        [
            f"You are the phone assistant of {profile.name}. Speak {language} only.",
            "You are on the phone: answer in one to three short sentences, no lists, no markdown, no emojis.",
            f"Now it is {format_datetime(now, 'EEEE, d MMMM y, HH:mm', locale='en')} ({profile.timezone}).",
            f"Address: {profile.address or 'not given'}. Opening hours: {opening_hours_text(profile, 'en')}",
            f"Services (id: name): {services}.",
            f"FAQ: {faq}" if faq else "",
            caller + known,
            "Rules:",
            "- Use find_slots for every availability question and offer only times it returned; never invent times.",
            "- Before book, read back service, day, date, time and name and ask for a yes; book only after yes.",
            "- Before cancel or reschedule, read back the appointment and ask for a yes.",
            "- Never give or decide medical, legal or financial matters (diagnoses, medication, refunds, "
            "contracts) and never handle complaints yourself: call transfer_to_human with reason "
            "decision_needed or complaint.",
            "- If the caller asks for a person, call transfer_to_human with reason caller_request. If that "
            "fails, offer to take a message.",
            "- If the caller asks about their personal data (see, correct, delete), call record_dsar_request.",
            "- If you cannot help after two tries, offer a message or a member of staff.",
            "- When the caller says goodbye, say goodbye and call end_call.",
        ]
    ).replace("\n\n", "\n")


_YES_NO_START = re.compile(
    r"(?:^|[.!]\s+)(?:soll|sollen|passt|ist|sind|möchten|darf|kann|können|stimmt|haben|"
    r"shall|should|does|do|is|are|would|can|could|may|did)\b[^.!?]*\?\s*$",
    re.IGNORECASE,
)


def _expects(text: str) -> Expectation:
    return "yes_no" if _YES_NO_START.search(text.strip()) else "free"


def translate_http_error(exc: Exception, provider: str) -> ProviderError:
    """Map an httpx exception or HTTP status to ``ProviderError`` (the complete mapping)."""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("the language model timed out", category=ErrorCategory.TIMEOUT, provider=provider)
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 429:
            category = ErrorCategory.RATE_LIMITED
        elif status in (401, 403):
            category = ErrorCategory.AUTH
        elif status == 404:
            category = ErrorCategory.NOT_FOUND
        elif status in (400, 413, 422):
            category = ErrorCategory.BAD_REQUEST
        elif status == 503:
            category = (
                ErrorCategory.UNAVAILABLE if exc.response.headers.get("retry-after") is None else (ErrorCategory.SERVER)
            )
        else:
            category = ErrorCategory.SERVER
        return ProviderError(f"the language model answered HTTP {status}", category=category, provider=provider)
    if isinstance(exc, httpx.TransportError):
        return ProviderError("the language model is unreachable", category=ErrorCategory.NETWORK, provider=provider)
    if isinstance(exc, (ValueError, KeyError, TypeError, IndexError)):
        return ProviderError(
            "the language model sent a malformed answer", category=ErrorCategory.SERVER, provider=provider
        )
    return ProviderError("the language model failed", category=ErrorCategory.SERVER, provider=provider)


class LlmEngine:
    """A ``DialogueEngine`` backed by a chat-completions model, with the rule engine as fallback."""

    name = "llm"

    def __init__(
        self,
        settings: LlmSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        fallback: RuleEngine | None = None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._fallback = fallback or RuleEngine()

    @property
    def processor(self) -> dict[str, Any]:
        """The processor this engine sends personal data to (for the processor registry, R-5.2)."""
        local = self.settings.resolved_provider in ("ollama", "vllm", "llamacpp")
        return {
            "name": self.settings.processor_name,
            "location": self.settings.processor_location or ("local" if local else None),
            "data_categories": ["call transcript", "caller name", "phone number", "appointment details"],
            "model": self.settings.model,
        }

    def client(self) -> httpx.AsyncClient:
        headers = {"content-type": "application/json"}
        params: dict[str, str] = {}
        if self.settings.api_key:
            if self.settings.resolved_provider == "azure":
                headers["api-key"] = self.settings.api_key
            else:
                headers["authorization"] = f"Bearer {self.settings.api_key}"
        if self.settings.resolved_provider == "azure":
            params["api-version"] = self.settings.azure_api_version
        return httpx.AsyncClient(
            base_url=self.settings.base_url.rstrip("/") + "/",
            headers=headers,
            params=params,
            timeout=self.settings.timeout_s,
            transport=self._transport,
        )

    def open(self, ctx: CallerContext, tools: DialogueTools) -> LlmConversation:
        return LlmConversation(self, ctx, tools, self._fallback.open(ctx, tools))


@dataclasses.dataclass
class _TurnResult:
    actions: list[Action] = dataclasses.field(default_factory=list)
    appointment: Mapping[str, Any] | None = None
    intent: Intent | None = None


_DSAR_KINDS: dict[str, DsarKind] = {
    "access": "access",
    "rectification": "rectification",
    "erasure": "erasure",
    "restriction": "restriction",
    "objection": "objection",
    "portability": "portability",
}
_TOOL_INTENTS: dict[str, Intent] = {
    "find_slots": "book",
    "book": "book",
    "cancel": "cancel",
    "reschedule": "reschedule",
    "take_message": "message",
    "record_dsar_request": "dsar",
    "answer_faq": "faq",
    "transfer_to_human": "human",
    "end_call": "goodbye",
}


class LlmConversation:
    """One call on the LLM engine; the rule conversation beside it takes over on failure."""

    def __init__(self, engine: LlmEngine, ctx: CallerContext, tools: DialogueTools, fallback: RuleConversation):
        self.engine = engine
        self.ctx = ctx
        self.tools = tools
        self.fallback = fallback
        self.log = ConversationLog(ctx=ctx)
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(ctx)}]
        self.failures = 0  # failed turns in a row
        self.degraded = False  # the rest of the call runs on the rule engine
        self.last_error: ProviderError | None = None
        self._schemas = tool_schemas(ctx.profile)
        self._region = default_region(ctx.profile)
        self._last_intent: Intent | None = None
        self._client: httpx.AsyncClient | None = None
        self._partial = _TurnResult()  # what the current model turn already did through tools

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def greet(self) -> Reply:
        reply = await self.fallback.greet()
        self.messages.append({"role": "assistant", "content": reply.text})
        self.log.turns.append(Turn("assistant", reply.text, reply))
        return reply

    async def respond(self, utterance: str) -> Reply:
        self.log.turns.append(Turn("caller", utterance))
        reply: Reply | None = None
        if not self.degraded and utterance.strip():
            try:
                reply = await asyncio.wait_for(self._model_turn(utterance), timeout=self.engine.settings.timeout_s)
                self.failures = 0
            except TimeoutError:
                self._failed(
                    ProviderError(
                        "the language model timed out",
                        category=ErrorCategory.TIMEOUT,
                        provider=self.engine.settings.resolved_provider,
                    )
                )
            except ProviderError as exc:
                self._failed(exc)
            except _BudgetExhaustedError:
                self._failed(
                    ProviderError(
                        "turn budget exhausted",
                        category=ErrorCategory.SERVER,
                        provider=self.engine.settings.resolved_provider,
                    )
                )
        if reply is None:
            reply = await self.fallback.respond(utterance)
            done = self._partial.actions
            if done:  # tools that already ran in the failed turn still happened
                reply = dataclasses.replace(
                    reply, actions=(*done, *reply.actions), appointment=reply.appointment or self._partial.appointment
                )
            self.messages.append({"role": "user", "content": utterance})
            self.messages.append({"role": "assistant", "content": reply.text})
        self._partial = _TurnResult()
        self.log.turns.append(Turn("assistant", reply.text, reply))
        if reply.end_call or reply.transfer is not None:
            await self.aclose()
        return reply

    def _failed(self, exc: ProviderError) -> None:
        self.last_error = exc
        self.failures += 1
        if self.failures >= self.engine.settings.max_failures or exc.is_permanent:
            self.degraded = True

    async def transfer_failed(self, reason: str) -> Reply:
        reply = await self.fallback.transfer_failed(reason)
        self.messages.append({"role": "system", "content": f"The transfer failed ({reason}). {reply.text}"})
        self.log.turns.append(Turn("assistant", reply.text, reply))
        return reply

    def heard(self, text: str) -> None:
        for message in reversed(self.messages):
            if message["role"] == "assistant" and message.get("content"):
                message["content"] = text
                break
        self.fallback.heard(text)

    # -- the model --------------------------------------------------------------------------

    async def _complete(self) -> dict[str, Any]:
        settings = self.engine.settings
        if self._client is None:
            self._client = self.engine.client()
        body = {
            "model": settings.model,
            "messages": self.messages,
            "tools": self._schemas,
            "tool_choice": "auto",
            "temperature": settings.temperature,
            **PRIVACY_OPTIONS[settings.resolved_provider],
        }
        try:
            response = await self._client.post("chat/completions", json=body)
            response.raise_for_status()
            data = response.json()
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
            return message
        except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise translate_http_error(exc, settings.resolved_provider) from exc

    async def _model_turn(self, utterance: str) -> Reply:
        pending = [{"role": "user", "content": utterance}]
        self.messages.extend(pending)
        mark = len(self.messages)
        result = self._partial = _TurnResult()
        try:
            for _ in range(self.engine.settings.turn_budget):
                message = await self._complete()
                calls = message.get("tool_calls") or []
                entry: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
                if calls:
                    entry["tool_calls"] = calls
                self.messages.append(entry)
                if not calls:
                    text = str(message.get("content") or "").strip()
                    if not text:
                        raise ProviderError(
                            "empty answer",
                            category=ErrorCategory.SERVER,
                            provider=self.engine.settings.resolved_provider,
                        )
                    return self._reply(text, result)
                for call in calls:
                    name = str(call["function"]["name"])
                    raw = call["function"].get("arguments") or "{}"
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw)
                    output = await self._run_tool(name, args, result)
                    self.messages.append(
                        {"role": "tool", "tool_call_id": call.get("id", name), "content": json.dumps(output)}
                    )
            raise _BudgetExhaustedError
        except (KeyError, TypeError, ValueError) as exc:
            del self.messages[mark - 1 :]
            raise ProviderError(
                "the language model sent a malformed tool call",
                category=ErrorCategory.SERVER,
                provider=self.engine.settings.resolved_provider,
            ) from exc
        except BaseException:
            del self.messages[mark - 1 :]
            raise

    def _reply(self, text: str, result: _TurnResult) -> Reply:
        intent = result.intent or self._last_intent or "other"
        self._last_intent = intent
        if result.actions and any(a.type == "transfer" for a in result.actions):
            intent = "human"
        return Reply(
            text=text,
            intent=intent,
            actions=tuple(result.actions),
            expects=_expects(text),
            understood={},
            appointment=result.appointment,
        )

    # -- tools ------------------------------------------------------------------------------

    def _phone(self, said: object) -> str | None:
        if not said:
            return self.ctx.caller_number
        text = str(said)
        try:
            return normalize_e164(text, self._region)
        except ValueError:
            return extract_phone(text, self.ctx.language, self._region)

    def _start(self, value: object) -> dt.datetime:
        moment = dt.datetime.fromisoformat(str(value))
        tz = self.ctx.profile.tz
        return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment

    async def _run_tool(self, name: str, args: dict[str, Any], result: _TurnResult) -> dict[str, Any]:
        """Run one tool for the model; business errors become tool results the model can act on."""
        ctx = self.ctx
        profile = ctx.profile
        lang = ctx.language
        tz = profile.tz
        if name in _TOOL_INTENTS:
            result.intent = _TOOL_INTENTS[name]
        try:
            if name == "find_slots":
                said = str(args.get("when") or "")
                when = parse_when(said, now=ctx.now, language=lang, tz=tz) if said else None
                if said and when is None:
                    try:
                        day = dt.date.fromisoformat(said[:10])
                        when = parse_when(day.strftime("%d.%m.%Y"), now=ctx.now, language="de", tz=tz)
                    except ValueError:
                        return {"error": "could not understand the time; ask the caller for a day or time"}
                staff = args.get("staff_id")
                slots = await self.tools.find_slots(
                    str(args["service_id"]), when, Preferences(staff_id=str(staff) if staff else None, note=said)
                )
                return {
                    "slots": [
                        {
                            "start": s.start.astimezone(tz).isoformat(),
                            "staff_id": s.staff_id,
                            "spoken": say_datetime(s.start.astimezone(tz), lang, ctx.now),
                        }
                        for s in slots
                    ]
                }
            if name == "book":
                staff = args.get("staff_id")
                appointment = await self.tools.book(
                    str(args["service_id"]),
                    self._start(args["start"]),
                    staff=str(staff) if staff else None,
                    name=str(args["name"]),
                    phone=self._phone(args.get("phone")),
                    email=str(args["email"]) if args.get("email") else None,
                    preferences=Preferences(note=str(args["preferences"])) if args.get("preferences") else None,
                )
                result.actions.append(Action("book", dict(appointment)))
                result.appointment = appointment
                return {"booked": dict(appointment)}
            if name == "find_caller_appointments":
                found = await self.tools.find_caller_appointments(
                    phone=ctx.caller_number, name=str(args["name"]) if args.get("name") else None
                )
                if not found and args.get("name"):
                    found = await self.tools.find_caller_appointments(name=str(args["name"]))
                return {
                    "appointments": [
                        {**dict(a), "spoken": say_datetime(dt.datetime.fromisoformat(a["start"]), lang, ctx.now)}
                        for a in found
                    ]
                }
            if name == "cancel":
                cancelled = await self.tools.cancel(str(args["appointment_id"]))
                result.actions.append(Action("cancel", dict(cancelled)))
                result.appointment = cancelled
                return {"cancelled": dict(cancelled)}
            if name == "reschedule":
                staff = args.get("staff_id")
                moved = await self.tools.reschedule(
                    str(args["appointment_id"]),
                    self._start(args["new_start"]),
                    staff=str(staff) if staff else None,
                )
                result.actions.append(Action("reschedule", dict(moved)))
                result.appointment = moved
                return {"rescheduled": dict(moved)}
            if name == "take_message":
                phone = self._phone(args.get("phone"))
                urgency: Urgency = "high" if args.get("urgency") == "high" else "normal"
                caller_name = str(args["name"]) if args.get("name") else ctx.known_name
                message_id = await self.tools.take_message(
                    name=caller_name, phone=phone, reason=str(args["reason"]), urgency=urgency
                )
                data = {
                    "id": message_id,
                    "name": caller_name,
                    "phone": phone,
                    "reason": str(args["reason"]),
                    "urgency": urgency,
                }
                result.actions.append(Action("message", data))
                return {"message_id": message_id, "callback_number": phone}
            if name == "record_dsar_request":
                kind = _DSAR_KINDS.get(str(args["kind"]))
                if kind is None:
                    return {"error": "unknown kind"}
                phone = self._phone(args.get("phone"))
                email = str(args["email"]) if args.get("email") else None
                if phone is None and email is None:
                    return {"error": "ask the caller for a phone number or e-mail address first"}
                request_id = await self.tools.record_dsar_request(kind, phone=phone, email=email, name=ctx.known_name)
                result.actions.append(Action("dsar", {"id": request_id, "kind": kind}))
                return {
                    "request_id": request_id,
                    "note": "identity is verified before anything is disclosed; answer within one month",
                }
            if name == "answer_faq":
                answer = answer_faq(profile, str(args["question"]), lang)
                return {"answer": answer} if answer else {"answer": None, "hint": say("no_answer_faq", lang)}
            if name == "transfer_to_human":
                if profile.forwarding_number is None:
                    return {"transferred": False, "hint": "nobody can take calls now; offer to take a message"}
                reason = str(args.get("reason") or "caller_request")
                mode = "cold" if reason == "caller_request" else "warm"
                summary = str(args.get("summary") or "").strip() or "Caller asked for a member of staff."
                result.actions.append(Action("transfer", {"mode": mode, "target": None, "summary": summary}))
                return {"transferred": True, "note": "say one short sentence; the call is being connected"}
            if name == "end_call":
                result.actions.append(Action("end_call"))
                return {"ended": True}
        except ConflictError:
            return {"error": "that slot has just been taken; call find_slots again"}
        except NotFoundError:
            return {"error": "not found"}
        except ProviderError:
            raise
        except VoicedeskError as exc:
            return {"error": exc.msg}
        return {"error": f"unknown tool {name}"}
