"""A small OpenAI-compatible server on loopback, for tests that need a real HTTP-backed model.

Answers POST /v1/chat/completions and /v1/completions with a fixed reply, split into one chunk
per word and sent as server-sent events when the request asks to stream. Nothing here is a mock
of the client: langchain-openai and the openai SDK talk real HTTP to it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

REPLY_WORDS = ["one", "two", "three", "four", "five", "six"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        chat = self.path.rstrip("/").endswith("/chat/completions")
        if not chat and not self.path.rstrip("/").endswith("/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = request.get("model", "loopback-model")
        if request.get("stream"):
            self._stream(chat, model, bool((request.get("stream_options") or {}).get("include_usage")))
        else:
            self._send_json(200, _whole(chat, model))

    def _send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, chat: bool, model: str, usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in _events(chat, model, usage):
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (an abandoned stream)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _whole(chat: bool, model: str) -> dict:
    text = " ".join(REPLY_WORDS)
    usage = {"prompt_tokens": 5, "completion_tokens": len(REPLY_WORDS), "total_tokens": 5 + len(REPLY_WORDS)}
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [choice], "usage": usage}
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    return {"id": "cmpl-1", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [choice], "usage": usage}


def _events(chat: bool, model: str, usage: bool) -> Iterator[dict]:
    created = int(time.time())
    for i, word in enumerate(REPLY_WORDS):
        text = word if i == 0 else " " + word
        last = i == len(REPLY_WORDS) - 1
        if chat:
            delta = {"content": text} if i else {"role": "assistant", "content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": "stop" if last else None}
            yield {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [choice]}
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop" if last else None, "logprobs": None}
            yield {"id": "cmpl-1", "object": "text_completion", "created": created, "model": model,
                   "choices": [choice]}
    if usage:
        yield {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [],
               "usage": {"prompt_tokens": 5, "completion_tokens": len(REPLY_WORDS),
                         "total_tokens": 5 + len(REPLY_WORDS)}}


class OpenAICompatibleServer:
    """`with OpenAICompatibleServer() as server:` serves on a free loopback port."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-loopback", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "OpenAICompatibleServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
