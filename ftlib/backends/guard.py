"""The guard in front of `transformers serve` (ftlib.backends.serve): each request is checked before
it costs anything, with FastAPI and pydantic on uvicorn, the stack the engine itself runs on.

- Only the routes it checks are served (POST /v1/chat/completions, /v1/completions, /v1/responses;
  GET /v1/models, /health), whatever the query string, trailing or doubled slashes: the engine's
  other routes (loading another model, resetting it) are out of reach, 404.
- A field of the wrong type or range (`temperature: "hot"`, `stop: 5`, `seed: "x"`), a body that is
  not a JSON object, or a prompt of the model's context or more: 400 naming the field, what it must
  be and what it got (the engine answered a bare 500, or generated for minutes past its context).
- A Content-Length that is not a number: 400 (uvicorn); a body that stops short of it: 400 after
  BODY_TIMEOUT_S; a body over MAX_BODY_BYTES: 413, unread.
- A token limit (max_tokens, max_completion_tokens, max_output_tokens) beyond what the context
  leaves is cut to it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from typing import Annotated, Iterator

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError
from starlette.requests import ClientDisconnect

HOST = "127.0.0.1"


class _Strict(BaseModel):
    """OpenAI's types, not coerced ("0.5" is not a number); fields not declared pass through."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Turn(_Strict):
    role: str
    content: str


class _Part(_Strict):
    text: str | None = None


class _Item(_Strict):  # a Responses API input item: a turn, or a flat content part
    role: str | None = None
    content: str | list[_Part] | None = None
    text: str | None = None


_Number = Annotated[float, Field(allow_inf_nan=False)]


class _Common(_Strict):
    """The fields the engine reads (and `float()`s or passes to generation: a wrong type was a 500)."""

    model: str | None = None
    temperature: Annotated[_Number, Field(ge=0, le=2)] | None = None
    top_p: Annotated[_Number, Field(ge=0, le=1)] | None = None
    frequency_penalty: Annotated[_Number, Field(ge=-2, le=2)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    logit_bias: dict[Annotated[str, Field(pattern=r"^\d+$")], _Number] | None = None
    generation_config: None = None  # the engine's own JSON settings: they would override max_tokens


class _Chat(_Common):
    messages: Annotated[list[_Turn], Field(min_length=1)]
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None


class _Completion(_Common):
    prompt: str
    suffix: str | None = None
    max_tokens: PositiveInt | None = None


class _Response(_Common):
    input: str | list[_Item]
    instructions: str | None = None
    max_output_tokens: PositiveInt | None = None


ROUTES = {"/v1/chat/completions": _Chat, "/v1/completions": _Completion, "/v1/responses": _Response}
READ_ONLY = ("/v1/models", "/health")  # GET routes, forwarded as they are
RULES = {  # what a field must be, in an error message
    "messages": 'must be a non-empty list of {"role": ..., "content": "..."} objects',
    "prompt": "must be a string", "suffix": "must be a string", "instructions": "must be a string",
    "input": 'must be a string or a list of {"role": ..., "content": ...} items',
    "max_tokens": "must be a positive integer", "max_completion_tokens": "must be a positive integer",
    "max_output_tokens": "must be a positive integer",
    "temperature": "must be a number from 0 to 2", "top_p": "must be a number from 0 to 1",
    "frequency_penalty": "must be a number from -2 to 2", "seed": "must be an integer",
    "stop": "must be a string or a list of strings", "stream": "must be true or false", "model": "must be a string",
    "logit_bias": 'must map token ids ("123") to numbers',
    "generation_config": "is not accepted here: it would override max_tokens; send max_tokens, temperature, "
                         "top_p, seed or stop instead",
}
MAX_BODY_BYTES = 16 << 20  # far beyond any context this serves; a larger body is refused unread
BODY_TIMEOUT_S = 10.0  # a body that stops short of its Content-Length is refused after this


def canonical(path: str) -> str:
    """A request path without repeated or trailing slashes (the query is not part of it).

    >>> canonical("//v1/chat/completions/")
    '/v1/chat/completions'
    """
    return "/" + "/".join(p for p in path.split("/") if p)


def check_request(path: str, body: bytes, tokenizer, context: int) -> tuple[str | None, bytes]:
    """(what is wrong, or None; the body to forward) for an OpenAI-style request to a ROUTES path.

    Refused: a body that is not a JSON object, a field of the wrong type or range (`_Chat`,
    `_Completion`, `_Response`), and a prompt of the model's context or more. A token limit beyond
    what the context leaves is cut to it, so no request generates for longer than the model can attend.
    """
    try:
        req = json.loads(body or b"null")
    except ValueError:
        return "the body is not valid JSON", body
    if not isinstance(req, dict):
        return "the body must be a JSON object", body
    try:
        checked = ROUTES[path].model_validate(req)
    except ValidationError as e:
        return _explain(e.errors()[0], req), body
    n = _prompt_tokens(checked, tokenizer)
    if n >= context:
        return f"the prompt is {n} tokens; the model's context is {context} tokens", body
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if req.get(key) is not None:
            req[key] = min(req[key], context - n)
    return None, json.dumps(req).encode()


def _explain(error: dict, req: dict) -> str:
    """One validation error as a sentence: the field, what it must be, what it got."""
    field = str(error["loc"][0])
    if field not in req:
        got = "none"
    else:
        value = req[field]
        shown = json.dumps(value)[:80]
        wrong_type = error["type"].endswith("_type") and len(error["loc"]) <= 2  # 2: a union's branch
        got = f"{type(value).__name__ if value is not None else 'null'} {shown}" if wrong_type else shown
    return f"'{field}' {RULES.get(field, 'is not valid: ' + error['msg'])}, got {got}"


def _prompt_tokens(req: _Chat | _Completion | _Response, tokenizer) -> int:
    """The prompt's length in tokens, as the engine will see it (the chat template applied)."""
    if isinstance(req, _Completion):
        return len(tokenizer(req.prompt, add_special_tokens=False).input_ids)
    if isinstance(req, _Chat):
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
    else:
        items = [_Item(role="user", content=req.input)] if isinstance(req.input, str) else req.input
        messages = [{"role": "system", "content": req.instructions}] if req.instructions else []
        messages += [{"role": "system" if i.role == "developer" else i.role or "user", "content": _text(i)}
                     for i in items]
    return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                             return_dict=False))


def _text(item: _Item) -> str:
    """The text of a Responses input item (its content parts' texts, joined)."""
    if isinstance(item.content, str):
        return item.content
    return "\n".join(t for t in [item.text, *(p.text for p in item.content or [])] if t)


class _Refused(Exception):
    """A request answered by the guard itself: (status, message)."""


def _error(status: int, message: str) -> JSONResponse:
    """OpenAI's error shape."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


class Guard:
    """An HTTP server (FastAPI on uvicorn) on HOST:port that checks each request (`check_request`:
    400 with the reason) and passes the rest to the engine at `upstream` (its port), streaming the
    answer back. Only ROUTES (POST) and READ_ONLY (GET) are served: the engine's other routes
    (loading another model, resetting) are not reachable through it."""

    def __init__(self, upstream: int, tokenizer, context: int, port: int = 0):
        self.upstream, self.tokenizer, self.context = upstream, tokenizer, context
        self.socket = socket.create_server((HOST, port))  # bound now: the port is known before start
        self.server_port = self.socket.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)

    def start(self, timeout_s: float = 30) -> "Guard":
        """Serve in a thread; return once it answers."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise RuntimeError(f"the guard did not start on port {self.server_port}")
        return self

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)

    def server_close(self) -> None:
        self.socket.close()

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
        async def handle(request: Request, path: str) -> Response:
            try:
                return await self.answer(request, canonical(path))
            except _Refused as e:
                return _error(*e.args)

        return app

    async def answer(self, request: Request, path: str) -> Response:
        """Check a request on a known route, then forward it (what the guard refuses: `_Refused`)."""
        if path in READ_ONLY and request.method == "GET":
            return await run_in_threadpool(self.forward, "GET", path, None, request.headers)
        if path in ROUTES and request.method == "POST":
            body = await _read_body(request)
            error, body = await run_in_threadpool(check_request, path, body, self.tokenizer, self.context)
            if error:
                raise _Refused(400, error)
            return await run_in_threadpool(self.forward, "POST", path, body, request.headers)
        if path in READ_ONLY or path in ROUTES:
            raise _Refused(405, f"{request.method} {path}: use {'POST' if path in ROUTES else 'GET'}")
        raise _Refused(404, f"no route {path}: this server answers POST {', '.join(ROUTES)} "
                            f"and GET {', '.join(READ_ONLY)}")

    def forward(self, method: str, path: str, body: bytes | None, headers) -> Response:
        """Send the request on (its canonical path, no query); stream the answer back; the engine's
        connection closes when the answer ends or the client goes."""
        conn = http.client.HTTPConnection(HOST, self.upstream)
        try:
            conn.request(method, path, body=body, headers={k: v for k, v in headers.items()
                                                           if k.lower() in ("content-type", "authorization")})
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            raise _Refused(502, f"the engine on port {self.upstream} did not answer ({e})") from None

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := resp.read1(65536):
                    yield chunk
            finally:
                conn.close()

        keep = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS}
        return StreamingResponse(chunks(), status_code=resp.status, headers=keep)


HOP_HEADERS = {"transfer-encoding", "connection", "content-length", "date", "server"}  # the guard's own


async def _read_body(request: Request) -> bytes:
    """The request's body, at most MAX_BODY_BYTES, within BODY_TIMEOUT_S (a Content-Length larger than
    the body sent would otherwise hold the connection open for good). uvicorn itself answers 400 to a
    Content-Length that is not a number."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_BODY_BYTES:
        raise _Refused(413, f"the body is {int(declared):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _Refused(413, f"the body is over the limit of {MAX_BODY_BYTES:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(400, f"the body stopped at {size:,} bytes, short of its Content-Length "
                            f"{declared}, for {BODY_TIMEOUT_S:g} s") from None
    except ClientDisconnect:
        raise _Refused(400, "the client closed the connection before the end of the body") from None
    return b"".join(chunks)
