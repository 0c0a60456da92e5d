"""`openai:<base_url>#<model>[?options]`: any OpenAI-compatible chat-completions endpoint.

OpenAI, vLLM, SGLang, Ollama, or `python -m skel_llm.serve`, through the `openai` package
with its own retries off: this teacher retries 429, 5xx, timeouts and dropped connections
itself, with exponential backoff and full jitter, waiting exactly `Retry-After` when the
server sends one, and gives up (`TeacherError`) after `retries` retries. Other 4xx errors
fail at once (retrying cannot fix a bad request or a wrong key).

Options (`?a=1&b=2` after the model): key_env (the environment variable holding the API
key; none: the key 'EMPTY', what local servers accept), timeout (s, default 120), retries
(default 6), backoff (first delay, s, default 1), max_backoff (s, default 60), max_tokens
(default 512), temperature (default 0.2), price_in / price_out (USD per million prompt /
completion tokens, for the summary's cost estimate).
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
import urllib.parse

from skel_llm.teachers import base, prompts

OPTIONS = ("key_env", "timeout", "retries", "backoff", "max_backoff", "max_tokens",
           "temperature", "price_in", "price_out")


def retry_after_seconds(headers) -> float | None:
  """Seconds from a `Retry-After` header (a number or an HTTP date), or None."""
  if headers is None:
    return None
  value = headers.get("retry-after") or headers.get("Retry-After")
  if value is None:
    return None
  try:
    return max(0.0, float(value))
  except ValueError:
    pass
  try:
    when = email.utils.parsedate_to_datetime(value)
  except (TypeError, ValueError):
    return None
  return max(0.0, when.timestamp() - time.time())


class OpenAITeacher:
  kind = "openai"
  needs_frames = True
  prompt_version = prompts.PROMPT_VERSION

  def __init__(self, base_url: str, model: str, *, api_key: str = "EMPTY", timeout: float = 120.0,
               retries: int = 6, backoff: float = 1.0, max_backoff: float = 60.0,
               max_tokens: int = prompts.MAX_TOKENS, temperature: float = prompts.TEMPERATURE,
               prices: tuple[float, float] | None = None, seed: int | None = None):
    import openai
    self._openai = openai
    self.base_url, self.model = base_url, model
    self.retries, self.backoff, self.max_backoff = int(retries), float(backoff), float(max_backoff)
    self.max_tokens, self.temperature = int(max_tokens), float(temperature)
    self.prices = prices
    self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                                max_retries=0)
    self._rng = random.Random(seed)
    self._lock = threading.Lock()
    self.attempts = 0  # requests sent, retries included (tests and the summary read it)
    self.retried: dict[str, int] = {}  # error kind -> retries

  @classmethod
  def from_spec(cls, spec: str, **kwargs) -> "OpenAITeacher":
    rest = spec[len("openai:"):]
    if "#" not in rest:
      raise ValueError(f"teacher spec {spec!r}: expected openai:<base_url>#<model>, e.g. "
                       f"openai:https://api.openai.com/v1#gpt-4o?key_env=OPENAI_API_KEY")
    url, _, model_q = rest.partition("#")
    model, _, query = model_q.partition("?")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
      raise ValueError(f"teacher spec {spec!r}: base_url {url!r} is not an http(s) URL")
    if not model:
      raise ValueError(f"teacher spec {spec!r}: no model name after '#'")
    opts = base.parse_options(query, spec, OPTIONS)
    key = "EMPTY"
    if opts.get("key_env"):
      key = os.environ.get(opts["key_env"], "")
      if not key:
        raise ValueError(f"teacher spec {spec!r}: environment variable {opts['key_env']} "
                         f"(key_env) is not set")
    prices = None
    if "price_in" in opts or "price_out" in opts:
      prices = (float(opts.get("price_in", 0)), float(opts.get("price_out", 0)))
    num = {k: float(opts[k]) for k in ("timeout", "backoff", "max_backoff", "temperature")
           if k in opts}
    ints = {k: int(opts[k]) for k in ("retries", "max_tokens") if k in opts}
    return cls(url, model, api_key=key, prices=prices, **num, **ints, **kwargs)

  def _delay(self, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
      return retry_after
    with self._lock:
      return self._rng.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** attempt))

  def ask(self, request: base.Request) -> base.Reply:
    if request.frames is None:
      raise ValueError("the openai teacher needs rendered frames (--renderer)")
    body = prompts.body(self.model, request.frames, request.label,
                        temperature=self.temperature, max_tokens=self.max_tokens)
    oa = self._openai
    last = None
    for attempt in range(self.retries + 1):
      with self._lock:
        self.attempts += 1
      try:
        resp = self.client.chat.completions.create(**body)
      except oa.APIStatusError as e:
        if e.status_code != 429 and e.status_code < 500:
          raise base.TeacherError(f"{self.base_url} ({self.model}): HTTP {e.status_code}: "
                                  f"{e.message}") from None
        last, kind, wait = e, f"HTTP {e.status_code}", retry_after_seconds(e.response.headers)
      except oa.APITimeoutError as e:
        last, kind, wait = e, "timeout", None
      except oa.APIConnectionError as e:
        last, kind, wait = e, "connection", None
      else:
        choice = resp.choices[0]
        usage = resp.usage
        return base.Reply(choice.message.content or "", choice.finish_reason or "stop",
                          int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0))
      if attempt == self.retries:
        break
      with self._lock:
        self.retried[kind] = self.retried.get(kind, 0) + 1
      time.sleep(self._delay(attempt, wait))
    raise base.TeacherError(f"{self.base_url} ({self.model}): gave up after "
                            f"{self.retries + 1} attempts; last error: {type(last).__name__}: "
                            f"{last}")

  def close(self) -> None:
    self.client.close()
