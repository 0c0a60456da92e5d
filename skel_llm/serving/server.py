"""HTTP: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.

Replies follow the OpenAI chat-completion object (`id`, `object`, `created`, `model`,
`choices[0].message.content`, `finish_reason` 'stop' or 'length', `usage`). Errors are JSON
`{"error": {"message", "type"}}` with 400 (bad request, naming the field), 404, 500.

Fault injection (tests of the clients' retry logic, `--inject_faults`; `--test_control` also
opens `POST /test/faults {"faults": spec}` and `GET /test/stats`): a list consumed one per
chat request, in order: `429:S` (429 with `Retry-After: S`), `500`, `slow:S` (answer
after S seconds), `drop` (send the headers and half the body, then close the connection).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid

from skel_llm.serving import engine as engine_lib

FAULT_KINDS = ("429", "500", "slow", "drop")


def parse_faults(spec: str) -> list[tuple[str, float]]:
  """'429:1,500,slow:3,drop' -> [('429', 1.0), ('500', 0.0), ('slow', 3.0), ('drop', 0.0)]."""
  out = []
  for item in filter(None, (s.strip() for s in spec.split(","))):
    kind, _, arg = item.partition(":")
    if kind not in FAULT_KINDS:
      raise ValueError(f"--inject_faults: unknown fault {item!r}; known: 429:S, 500, slow:S, drop")
    try:
      out.append((kind, float(arg) if arg else 0.0))
    except ValueError:
      raise ValueError(f"--inject_faults: {item!r}: expected a number after ':'") from None
  return out


class Server(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def __init__(self, address, engine: engine_lib.Engine, faults=(), request_timeout_s=600.0,
               fault_control: bool = False):
    super().__init__(address, Handler)
    self.engine = engine
    self.faults = list(faults)
    self.fault_control = fault_control  # tests: POST /test/faults, GET /test/stats
    self.arrivals: list[float] = []  # time of every chat request (tests read it)
    self.request_timeout_s = request_timeout_s
    self.lock = threading.Lock()
    self.served = 0  # chat requests answered with 200

  def next_fault(self):
    with self.lock:
      return self.faults.pop(0) if self.faults else None


class Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"
  server: Server

  def log_message(self, fmt, *args):  # quiet: the clients report
    pass

  def _send(self, code: int, obj: dict, headers: dict | None = None, cut: bool = False) -> None:
    data = json.dumps(obj).encode()
    self.send_response(code)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
      self.send_header(k, v)
    self.end_headers()
    if cut:
      self.wfile.write(data[:len(data) // 2])
      self.wfile.flush()
      self.close_connection = True
      try:
        self.connection.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
      return
    self.wfile.write(data)

  def _error(self, code: int, message: str, kind: str, headers=None) -> None:
    self._send(code, {"error": {"message": message, "type": kind}}, headers)

  def do_GET(self):
    if self.path.rstrip("/") in ("/health", ""):
      self._send(200, {"status": "ok"})
    elif self.path == "/test/stats" and self.server.fault_control:
      self._send(200, {"served": self.server.served, "arrivals": self.server.arrivals,
                       "batches": self.server.engine.batches,
                       "faults_left": len(self.server.faults)})
    elif self.path.rstrip("/") == "/v1/models":
      self._send(200, {"object": "list", "data": [
          {"id": self.server.engine.model_name, "object": "model", "owned_by": "skel_llm"}]})
    else:
      self._error(404, f"no route {self.path}", "not_found")

  def do_POST(self):
    if self.path == "/test/faults" and self.server.fault_control:
      length = int(self.headers.get("Content-Length", "0"))
      spec = json.loads(self.rfile.read(length) or b"{}").get("faults", "")
      try:
        faults = parse_faults(spec)
      except ValueError as e:
        self._error(400, str(e), "invalid_request_error")
        return
      with self.server.lock:
        self.server.faults = faults
        self.server.arrivals.clear()
      self._send(200, {"faults": len(faults)})
      return
    if self.path.rstrip("/") != "/v1/chat/completions":
      self._error(404, f"no route {self.path}; use /v1/chat/completions", "not_found")
      return
    try:
      length = int(self.headers.get("Content-Length", "0"))
      body = json.loads(self.rfile.read(length) or b"null")
    except ValueError as e:
      self._error(400, f"request body: not JSON ({e})", "invalid_request_error")
      return
    with self.server.lock:
      self.server.arrivals.append(time.time())
    fault = self.server.next_fault()
    if fault is not None:
      kind, arg = fault
      if kind == "429":
        self._error(429, "rate limited (injected)", "rate_limit_error",
                    {"Retry-After": f"{arg:g}"})
        return
      if kind == "500":
        self._error(500, "server error (injected)", "server_error")
        return
      if kind == "slow":
        time.sleep(arg)
    try:
      if isinstance(body, dict) and body.get("stream"):
        raise engine_lib.RequestError("stream: streaming is not supported; send stream=false")
      job = self.server.engine.submit(self.server.engine.parse(body),
                                      timeout=self.server.request_timeout_s)
    except engine_lib.RequestError as e:
      self._error(400, str(e), "invalid_request_error")
      return
    except Exception as e:  # the engine failed: report, keep serving
      self._error(500, f"{type(e).__name__}: {e}", "server_error")
      return
    reply = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
        "created": int(time.time()), "model": self.server.engine.model_name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                     "finish_reason": job.finish_reason}],
        "usage": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
                  "total_tokens": job.prompt_tokens + job.completion_tokens}}
    with self.server.lock:
      self.server.served += 1
    self._send(200, reply, cut=fault is not None and fault[0] == "drop")
