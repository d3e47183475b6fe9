"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for LLM engine tests.

Each request to ``POST /v1/chat/completions`` is answered by the next ``Step`` of the
script: a text answer, tool calls (whose arguments may be computed from the request, e.g.
a slot start returned by an earlier tool), an HTTP error, or a stall that never answers
until the server shuts down. Requests and their headers are recorded for assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Body = dict[str, Any]
Args = Mapping[str, Any] | Callable[[Body], Mapping[str, Any]]


@dataclass(frozen=True)
class Step:
    """One scripted answer; exactly one of ``text``/``calls``/``status``/``stall`` applies."""

    text: str | None = None
    calls: tuple[tuple[str, Args], ...] = ()
    status: int | None = None
    stall: bool = False


def says(text: str) -> Step:
    return Step(text=text)


def calls(name: str, args: Args) -> Step:
    return Step(calls=((name, args),))


def fails(status: int) -> Step:
    return Step(status=status)


def stalls() -> Step:
    return Step(stall=True)


def last_tool_result(body: Body) -> dict[str, Any]:
    """The JSON content of the newest ``tool`` message in a request."""
    for message in reversed(body["messages"]):
        if message["role"] == "tool":
            result: dict[str, Any] = json.loads(message["content"])
            return result
    raise AssertionError("no tool result in the request")


def first_offered_start(body: Body) -> str:
    """The first slot start any earlier ``find_slots`` result offered in this conversation."""
    for message in body["messages"]:
        if message["role"] == "tool":
            content = json.loads(message["content"])
            if content.get("slots"):
                start: str = content["slots"][0]["start"]
                return start
    raise AssertionError("no slots offered yet")


@dataclass
class FakeLlm:
    """The scripted model; ``requests``/``headers`` hold what the engine sent."""

    steps: deque[Step]
    requests: list[Body] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def script(cls, *steps: Step) -> FakeLlm:
        return cls(deque(steps))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if not self.steps:
            return JSONResponse({"error": {"message": "script exhausted"}}, status_code=500)
        step = self.steps.popleft()
        if step.stall:
            await self.release.wait()
            return JSONResponse({"error": {"message": "released"}}, status_code=503)
        if step.status is not None:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=step.status)
        message: dict[str, Any] = {"role": "assistant", "content": step.text}
        if step.calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(dict(args(body) if callable(args) else args))},
                }
                for name, args in step.calls
            ]
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if step.calls else "stop"}],
            }
        )


@asynccontextmanager
async def serve_fake_llm(fake: FakeLlm) -> AsyncIterator[str]:
    """Serve ``fake`` on a free port of 127.0.0.1; yields the base URL (``…/v1``)."""
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        fake.release.set()
        server.should_exit = True
        await task
