"""A small OpenAI-, Azure OpenAI-, Anthropic-, vLLM- and Ollama-compatible HTTP server on 127.0.0.1.

It answers the routes CrossBridge's AI providers call, in the shapes the vendors document, so the real
``openai`` and ``anthropic`` SDKs and plain ``requests`` parse its answers as they would the real services':

- ``POST /v1/chat/completions`` (OpenAI, vLLM) and ``POST /openai/deployments/<name>/chat/completions`` (Azure);
- ``POST /v1/messages`` (Anthropic);
- ``POST /api/chat`` (Ollama);
- ``POST /v1/embeddings`` (OpenAI embeddings).

Each request is answered by the next scripted behaviour (``FakeLLM.script``), else ``ok``:

- ``ok``: success with usage (OpenAI: 12 prompt tokens of which 4 cached, 5 completion; Anthropic: 20 input,
  3 read from the cache, 7 output; Ollama: 26 / 9; embeddings: 8 prompt tokens, 3-dimension vectors);
- ``no_usage``: success without any usage block (Ollama: without its token counts);
- ``429``: the vendor's rate-limit error with ``Retry-After`` (``retry_after`` seconds, fractional);
- ``401``: the vendor's authentication error;
- ``500``: the vendor's server error (with ``retry-after-ms``, so an SDK retries it quickly);
- ``slow``: success after ``slow_s`` seconds (longer than a test's client timeout).

``FakeLLM.requests`` keeps what was asked (method, path, headers, parsed body), so tests can count the attempts an
SDK made and see the headers it sent. Nothing but 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = "*** Keywords ***\nLogin Works\n    Log    migrated by the fake model"
_AZURE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")


class FakeLLM:
    """The server's state: scripted behaviours (consumed in order), requests seen, the knobs of ``429``/``slow``."""

    def __init__(self) -> None:
        self.behaviours: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.retry_after = 0.05
        self.slow_s = 1.5
        self.base = ""
        self._lock = threading.Lock()

    def script(self, *behaviours: str) -> None:
        """The next requests (any route) get these behaviours, in order; then ``ok`` again."""
        with self._lock:
            self.behaviours.extend(behaviours)

    def next_behaviour(self) -> str:
        with self._lock:
            return self.behaviours.pop(0) if self.behaviours else "ok"

    def paths(self) -> list[str]:
        """The paths (without query) of the POST requests seen, in order."""
        return [path.split("?")[0] for method, path, _, _ in self.requests if method == "POST"]


def _openai_error(status: int) -> dict[str, Any]:
    errors = {
        429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        401: ("Incorrect API key provided: sk-te***. You can find your API key in your settings.",
              "invalid_request_error", "invalid_api_key"),
        500: ("The server had an error while processing your request.", "server_error", None),
    }
    message, kind, code = errors[status]
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _anthropic_error(status: int) -> dict[str, Any]:
    errors = {429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
              401: ("authentication_error", "invalid x-api-key"), 500: ("api_error", "Internal server error")}
    kind, message = errors[status]
    return {"type": "error", "error": {"type": kind, "message": message}}


def _chat_completion(model: str, usage: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake-0001", "object": "chat.completion", "created": int(time.time()),
        "model": f"{model}-2024-08-06", "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                         "prompt_tokens_details": {"cached_tokens": 4}}
    return body


def _message(model: str, usage: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_fake_0001", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": REPLY}], "stop_reason": "end_turn", "stop_sequence": None,
    }
    if usage:
        body["usage"] = {"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 3,
                         "cache_creation_input_tokens": 0}
    return body


def _ollama(model: str, usage: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "created_at": "2026-01-01T00:00:00Z",
                            "message": {"role": "assistant", "content": REPLY}, "done": True, "done_reason": "stop"}
    if usage:
        body.update(prompt_eval_count=26, eval_count=9, total_duration=123456789)
    return body


def _embeddings(model: str, inputs: Any, usage: bool) -> dict[str, Any]:
    texts = inputs if isinstance(inputs, list) else [inputs]
    body: dict[str, Any] = {"object": "list", "model": model, "data": [
        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(texts))]}
    if usage:
        body["usage"] = {"prompt_tokens": 8, "total_tokens": 8}
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def do_GET(self) -> None:
        state: FakeLLM = self.server.state
        state.requests.append(("GET", self.path, dict(self.headers), None))
        if self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "deepseek-coder", "object": "model"}]})
        elif self.path == "/api/tags":
            self._send(200, {"models": [{"name": "llama3"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        state: FakeLLM = self.server.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw or b"{}")
        state.requests.append(("POST", self.path, dict(self.headers), body))
        path = self.path.split("?")[0]
        behaviour = state.next_behaviour()
        if behaviour == "slow":
            time.sleep(state.slow_s)
        anthropic = path == "/v1/messages"
        if behaviour in ("429", "401", "500"):
            status = int(behaviour)
            headers = {"retry-after": str(state.retry_after)} if status == 429 else {}
            if status == 500:
                headers["retry-after-ms"] = "10"
            if path == "/api/chat":
                self._send(status, {"error": f"fake ollama error {status}"}, headers)
            else:
                self._send(status, _anthropic_error(status) if anthropic else _openai_error(status), headers)
            return
        usage = behaviour != "no_usage"
        model = str(body.get("model", ""))
        azure = _AZURE.match(path)
        if path.endswith("/chat/completions"):
            self._send(200, _chat_completion(azure["deployment"] if azure else model, usage))
        elif anthropic:
            self._send(200, _message(model, usage), {"request-id": "req_fake_0001"})
        elif path == "/api/chat":
            self._send(200, _ollama(model, usage))
        elif path.endswith("/embeddings"):
            self._send(200, _embeddings(model, body.get("input"), usage))
        else:
            self._send(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})


@contextmanager
def serve() -> Iterator[FakeLLM]:
    """Run the fake on a free 127.0.0.1 port; yields its state (``state.base`` is ``http://127.0.0.1:<port>``)."""
    state = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
