"""A local stand-in for OpenAI, LiveAvatar and HeyGen, for tests only.

openai 3.x sends through ``httpx2``, which httpx mocking libraries do not
intercept, so tests point the real SDK (and our httpx code) at a real HTTP
server instead: :class:`FakeAIServer` runs this Quart app under Hypercorn on
127.0.0.1 in a background thread. It speaks the documented request/response
shapes, checks credentials the way the services do, records every request so
a test can assert what our code sent, and can be scripted per test (replies,
failures, delays, cut streams).

Never import this outside tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, request

__all__ = ["FakeAI", "FakeAIServer", "RecordedRequest", "key_only_in"]

DEFAULT_OPENAI_KEY: Final = "sk-fake-openai-0123456789abcdef"
DEFAULT_LIVEAVATAR_KEY: Final = "la-fake-liveavatar-0123456789"
DEFAULT_HEYGEN_KEY: Final = "hg-fake-heygen-0123456789"

_REALTIME_TOP_LEVEL: Final = frozenset({"expires_after", "session"})
_REALTIME_SESSION_KEYS: Final = frozenset(
    {
        "type", "audio", "include", "instructions", "max_output_tokens", "model",
        "output_modalities", "parallel_tool_calls", "prompt", "reasoning", "tool_choice",
        "tools", "tracing", "truncation",
    }
)  # fmt: skip
_TRANSCRIPTION_SESSION_KEYS: Final = frozenset({"type", "audio", "include"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def secret_locations(self, secret: str) -> list[str]:
        """Where ``secret`` appears: ``header:<name>``, ``path``, ``query`` or ``body``."""
        found = [f"header:{k}" for k, v in self.headers.items() if secret in v]
        if secret in self.path:
            found.append("path")
        if any(secret in k or secret in v for k, v in self.query.items()):
            found.append("query")
        if secret.encode() in self.body:
            found.append("body")
        return found


@dataclass
class _Failure:
    status: int
    remaining: int
    path: str | None
    body: Any
    headers: dict[str, str]


@dataclass
class _Delay:
    seconds: float
    remaining: int
    path: str | None


@dataclass
class _Reply:
    text: str
    chunks: list[str] | None
    usage: tuple[int, int] | None
    finish_reason: str
    cut_after: int | None = None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    replies: list[_Reply] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    delays: list[_Delay] = field(default_factory=list)


def _openai_error(
    status: int, message: str, *, type_: str = "invalid_request_error",
    code: str | None = None, param: str | None = None,
) -> tuple[dict[str, Any], int]:  # fmt: skip
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}, status


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _content_chars(messages: Sequence[Any]) -> int:
    total = 0
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return total


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or [text]


def _matches(path_filter: str | None, path: str) -> bool:
    return path_filter is None or path.startswith(path_filter)


class FakeAI:
    """The app and its scriptable state; :class:`FakeAIServer` adds the server."""

    def __init__(
        self,
        *,
        openai_key: str = DEFAULT_OPENAI_KEY,
        liveavatar_key: str = DEFAULT_LIVEAVATAR_KEY,
        heygen_key: str = DEFAULT_HEYGEN_KEY,
    ) -> None:
        self.openai_key = openai_key
        self.liveavatar_key = liveavatar_key
        self.heygen_key = heygen_key
        self._state = _State()
        self.app = self._build_app()

    # -- scripting (called from the test thread) -----------------------------

    def next_chat_reply(
        self,
        text: str,
        *,
        chunks: Sequence[str] | None = None,
        usage: tuple[int, int] | None = None,
        finish_reason: str = "stop",
    ) -> None:
        """Queue the next answer of chat/completions or responses.

        ``chunks`` sets the stream deltas (default: word by word); ``usage`` is
        (prompt_tokens, completion_tokens) (default: ~4 characters per token).
        """
        if chunks is not None and "".join(chunks) != text:
            raise ValueError("chunks must join to text")
        with self._state.lock:
            self._state.replies.append(
                _Reply(text, list(chunks) if chunks is not None else None, usage, finish_reason)
            )

    def cut_next_stream(self, text: str, *, after_chunks: int = 1) -> None:
        """Queue a streamed answer whose body ends after ``after_chunks`` deltas,
        with no finish_reason, usage or ``[DONE]`` (a dropped connection)."""
        with self._state.lock:
            self._state.replies.append(_Reply(text, None, None, "stop", cut_after=after_chunks))

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        *,
        path: str | None = None,
        body: Any = None,
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to paths starting with ``path``) with ``status``."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        if body is None:
            body = {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        with self._state.lock:
            self._state.failures.append(_Failure(status, times, path, body, headers))

    def delay_next(self, seconds: float, times: int = 1, *, path: str | None = None) -> None:
        """Hold the next ``times`` requests for ``seconds`` before answering."""
        with self._state.lock:
            self._state.delays.append(_Delay(seconds, times, path))

    def reset(self) -> None:
        """Forget recorded requests and pending scripts (between tests)."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.replies.clear()
            self._state.failures.clear()
            self._state.delays.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def last_request(self) -> RecordedRequest:
        reqs = self.requests
        if not reqs:
            raise AssertionError("the fake received no request")
        return reqs[-1]

    # -- internals (run on the server's loop) --------------------------------

    def _take(self, items: list[Any], path: str) -> Any:
        with self._state.lock:
            for item in items:
                if _matches(item.path, path) and item.remaining > 0:
                    item.remaining -= 1
                    if item.remaining == 0:
                        items.remove(item)
                    return item
        return None

    def _next_reply(self, default: str) -> _Reply:
        with self._state.lock:
            if self._state.replies:
                return self._state.replies.pop(0)
        return _Reply(default, None, None, "stop")

    def _bearer_ok(self) -> tuple[dict[str, Any], int] | None:
        auth = request.headers.get("Authorization", "")
        if not auth:
            return _openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or token != self.openai_key:
            shown = f"{token[:3]}***{token[-4:]}" if len(token) > 8 else "***"
            return _openai_error(
                401, f"Incorrect API key provided: {shown}.", code="invalid_api_key"
            )
        return None

    def _build_app(self) -> Quart:
        app = Quart("synergyhub_fake_ai")
        app.config["RESPONSE_TIMEOUT"] = None
        state = self._state
        fake = self

        @app.before_request
        async def record_and_script() -> Any:
            raw = await request.get_data(as_text=False)
            body = raw.encode() if isinstance(raw, str) else raw
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            with state.lock:
                state.requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=request.path,
                        query=dict(request.args.items()),
                        headers={k.lower(): v for k, v in request.headers.items()},
                        json=parsed,
                        body=body,
                    )
                )
            delay = fake._take(state.delays, request.path)
            if delay is not None:
                await asyncio.sleep(delay.seconds)
            failure = fake._take(state.failures, request.path)
            if failure is not None:
                return Response(
                    json.dumps(failure.body),
                    status=failure.status,
                    content_type="application/json",
                    headers={"x-request-id": f"req_{secrets.token_hex(8)}", **failure.headers},
                )
            return None

        @app.after_request
        async def request_id(response: Response) -> Response:
            response.headers.setdefault("x-request-id", f"req_{secrets.token_hex(8)}")
            return response

        @app.errorhandler(404)
        async def not_found(_: Exception) -> tuple[dict[str, Any], int]:
            return _openai_error(404, f"Invalid URL ({request.method} {request.path})")

        @app.errorhandler(405)
        async def not_allowed(_: Exception) -> tuple[dict[str, Any], int]:
            return _openai_error(405, f"Method not allowed ({request.method} {request.path})")

        # -- OpenAI -------------------------------------------------------

        @app.post("/v1/chat/completions")
        async def chat_completions() -> Any:
            if (denied := fake._bearer_ok()) is not None:
                return denied
            data = await request.get_json(force=True, silent=True)
            if not isinstance(data, dict):
                return _openai_error(400, "We could not parse the JSON body of your request.")
            model = data.get("model")
            messages = data.get("messages")
            if not isinstance(model, str) or not model:
                return _openai_error(400, "you must provide a model parameter", param="model")
            if (
                not isinstance(messages, list)
                or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
            ):
                return _openai_error(400, "Invalid 'messages'.", param="messages")
            fmt = data.get("response_format")
            if isinstance(fmt, dict) and fmt.get("type") == "json_object":
                if "json" not in json.dumps(messages).lower():
                    return _openai_error(
                        400,
                        "'messages' must contain the word 'json' in some form, to use "
                        "'response_format' of type 'json_object'.",
                        param="messages",
                    )
            last_user = next(
                (m.get("content") for m in reversed(messages) if m.get("role") == "user"), ""
            )
            reply = fake._next_reply(f"fake reply to: {str(last_user)[:200]}")
            prompt_tokens, completion_tokens = reply.usage or (
                _tokens(_content_chars(messages)),
                _tokens(len(reply.text)),
            )
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            cid = f"chatcmpl-{secrets.token_hex(12)}"
            created = int(time.time())
            if data.get("stream") is True:
                options = data.get("stream_options") or {}
                include_usage = isinstance(options, dict) and options.get("include_usage") is True
                return fake._stream_chat(cid, created, model, reply, usage, include_usage)
            return {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }

        @app.post("/v1/responses")
        async def responses() -> Any:
            if (denied := fake._bearer_ok()) is not None:
                return denied
            data = await request.get_json(force=True, silent=True)
            if not isinstance(data, dict) or not isinstance(data.get("model"), str):
                return _openai_error(400, "you must provide a model parameter", param="model")
            given = data.get("input")
            if not isinstance(given, (str, list)):
                return _openai_error(400, "Invalid 'input'.", param="input")
            if data.get("stream") is True:
                return _openai_error(400, "the fake does not stream /v1/responses", param="stream")
            prompt = given if isinstance(given, str) else json.dumps(given)
            reply = fake._next_reply(f"fake reply to: {prompt[:200]}")
            input_tokens, output_tokens = reply.usage or (
                _tokens(len(prompt)),
                _tokens(len(reply.text)),
            )
            return {
                "id": f"resp_{secrets.token_hex(12)}",
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": data["model"],
                "output": [
                    {
                        "type": "message",
                        "id": f"msg_{secrets.token_hex(12)}",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                    }
                ],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": input_tokens,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": output_tokens,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": input_tokens + output_tokens,
                },
            }

        @app.post("/v1/realtime/client_secrets")
        async def client_secrets() -> Any:
            if (denied := fake._bearer_ok()) is not None:
                return denied
            data = await request.get_json(force=True, silent=True)
            if not isinstance(data, dict):
                return _openai_error(400, "We could not parse the JSON body of your request.")
            for key in data:
                if key not in _REALTIME_TOP_LEVEL:
                    return _openai_error(
                        400, f"Unknown parameter: '{key}'.", code="unknown_parameter", param=key
                    )
            expires = data.get("expires_after", {"anchor": "created_at", "seconds": 600})
            if (
                not isinstance(expires, dict)
                or expires.get("anchor", "created_at") != "created_at"
                or not isinstance(expires.get("seconds", 600), int)
                or not 10 <= expires.get("seconds", 600) <= 7200
            ):
                return _openai_error(
                    400,
                    "Invalid 'expires_after': anchor must be 'created_at' and seconds "
                    "between 10 and 7200.",
                    param="expires_after",
                )
            session = data.get("session", {"type": "realtime"})
            if not isinstance(session, dict) or session.get("type") not in (
                "realtime",
                "transcription",
            ):
                return _openai_error(
                    400,
                    "Invalid 'session.type': expected 'realtime' or 'transcription'.",
                    param="session.type",
                )
            allowed = (
                _REALTIME_SESSION_KEYS
                if session["type"] == "realtime"
                else _TRANSCRIPTION_SESSION_KEYS
            )
            for key in session:
                if key not in allowed:
                    return _openai_error(
                        400,
                        f"Unknown parameter: 'session.{key}'.",
                        code="unknown_parameter",
                        param=f"session.{key}",
                    )
            now = int(time.time())
            echoed = dict(session)
            if session["type"] == "realtime":
                echoed.setdefault("model", "gpt-realtime")
                echoed["object"] = "realtime.session"
            else:
                echoed["object"] = "realtime.transcription_session"
            echoed["id"] = f"sess_{secrets.token_hex(12)}"
            echoed["expires_at"] = 0
            return {
                "value": f"ek_{secrets.token_hex(16)}",
                "expires_at": now + int(expires.get("seconds", 600)),
                "session": echoed,
            }

        @app.post("/v1/realtime/sessions")
        @app.post("/v1/realtime/transcription_sessions")
        async def removed_realtime_sessions() -> Any:
            return _openai_error(
                400,
                "This endpoint is no longer supported; mint client secrets with "
                "POST /v1/realtime/client_secrets.",
                code="unsupported_endpoint",
            )

        # -- LiveAvatar ---------------------------------------------------

        @app.post("/v1/sessions/token")
        async def liveavatar_token() -> Any:
            if request.headers.get("X-API-KEY") != fake.liveavatar_key:
                return {"code": 4010, "data": None, "message": "Invalid API key"}, 401
            data = await request.get_json(force=True, silent=True)
            if not isinstance(data, dict) or not isinstance(data.get("avatar_id"), str):
                return {
                    "detail": [
                        {"loc": ["body", "avatar_id"], "msg": "Field required", "type": "missing"}
                    ]
                }, 422
            mode = data.get("mode", "FULL")
            if mode not in ("FULL", "LITE", "CUSTOM"):
                return {
                    "detail": [{"loc": ["body", "mode"], "msg": "Invalid mode", "type": "enum"}]
                }, 422
            if mode == "FULL" and not isinstance(data.get("avatar_persona"), dict):
                return {
                    "detail": [
                        {
                            "loc": ["body", "avatar_persona"],
                            "msg": "Field required",
                            "type": "missing",
                        }
                    ]
                }, 422
            session_id = str(uuid.uuid4())
            return {
                "code": 1000,
                "data": {
                    "session_id": session_id,
                    "session_token": _fake_jwt({"sid": session_id, "exp": int(time.time()) + 3600}),
                },
                "message": "Session token created",
            }

        # -- HeyGen (legacy streaming avatar) ----------------------------

        @app.post("/v1/streaming.create_token")
        async def heygen_token() -> Any:
            if request.headers.get("x-api-key") != fake.heygen_key:
                return {
                    "error": {"code": 400112, "message": "Unauthorized"},
                    "data": None,
                }, 401
            return {"error": None, "data": {"token": secrets.token_urlsafe(32)}}

        return app

    def _stream_chat(
        self,
        cid: str,
        created: int,
        model: str,
        reply: _Reply,
        usage: dict[str, int],
        include_usage: bool,
    ) -> Response:
        pieces = reply.chunks if reply.chunks is not None else _words(reply.text)

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            body: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if include_usage:
                body["usage"] = None
            body.update(extra)
            return f"data: {json.dumps(body)}\n\n".encode()

        async def generate() -> AsyncIterator[bytes]:
            yield event(
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "", "refusal": None},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            for n, piece in enumerate(pieces):
                if reply.cut_after is not None and n >= reply.cut_after:
                    return
                yield event(
                    [
                        {
                            "index": 0,
                            "delta": {"content": piece},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
                await asyncio.sleep(0)
            if reply.cut_after is not None:
                return
            yield event(
                [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reply.finish_reason}]
            )
            if include_usage:
                yield event([], usage=usage)
            yield b"data: [DONE]\n\n"

        response = Response(generate(), content_type="text/event-stream")
        response.timeout = None
        return response


def _fake_jwt(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT-shaped token, so consumers can read ``exp`` like the real one."""

    def part(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


class FakeAIServer(FakeAI):
    """:class:`FakeAI` served by Hypercorn on 127.0.0.1:<free port> in a thread.

    ``base_url`` is ``http://127.0.0.1:PORT``; the OpenAI SDK wants
    ``openai_base_url`` (``.../v1``). Use as a context manager or call
    ``start()`` / ``stop()``.
    """

    def __init__(self, *, host: str = "127.0.0.1", **keys: str) -> None:
        super().__init__(**keys)
        self.host = host
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeAIServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            return self
        # Bind and listen here, so the port is known and connections queue even
        # before the server loop accepts; Hypercorn adopts the socket via fd://.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        config.graceful_timeout = 1.0
        config.loglevel = "WARNING"
        config.accesslog = None
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, args=(config,), name=f"fake-ai-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"FakeAIServer did not start: {self._error!r}")
        return self

    def _run(self, config: Config) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._shutdown = asyncio.Event()

            @self.app.before_serving
            async def ready() -> None:
                self._ready.set()

            await serve(self.app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, shutdown = self._thread, self._loop, self._shutdown
        if thread is None:
            return
        if loop is not None and shutdown is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(shutdown.set)
            except RuntimeError:  # loop already stopped
                pass
        thread.join(timeout)
        self._thread = None
        self._loop = None
        self._shutdown = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def key_only_in(requests: Iterable[RecordedRequest], secret: str, header: str) -> bool:
    """True if every request carried ``secret`` in ``header`` and nowhere else."""
    expected = [f"header:{header.lower()}"]
    return all(r.secret_locations(secret) == expected for r in requests)
