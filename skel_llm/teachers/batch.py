"""OpenAI Batch JSONL: export the teach requests, import the results (also `vllm run-batch`).

Each request line is `{"custom_id": <cache key>, "method": "POST", "url":
"/v1/chat/completions", "body": {...}}`; the cache key is the job's
`cache_key(model, prompt version, frames sha256)`, so importing joins results back to clips
without any other bookkeeping and the imported replies go through the same validation,
files and resume logic as live ones (`BatchResults` is a teacher that answers from a file).
"""

from __future__ import annotations

import io
import json

from skel_llm import fs
from skel_llm.data import rationales
from skel_llm.teachers import base, job, prompts

URL = "/v1/chat/completions"


def export_requests(items, teacher, render, path: str, render_batch: int = 16) -> int:
  """Writes one Batch request per clip; returns how many."""
  if teacher.kind not in ("openai", "local"):
    raise ValueError(f"--export_batch needs a chat-completions teacher (openai:...), not "
                     f"{teacher.kind!r}: it has no requests to send")
  if render is None:
    raise ValueError("--export_batch needs --renderer (the requests carry the frames)")
  items = list(items)
  lines = []
  for start in range(0, len(items), render_batch):
    chunk = items[start:start + render_batch]
    for it, fr in zip(chunk, render(chunk)):
      key = job.cache_key(teacher.model, teacher.prompt_version, job.array_sha256(fr))
      lines.append(json.dumps({"custom_id": key, "method": "POST", "url": URL,
                               "body": prompts.body(
                                   teacher.model, fr, it.label,
                                   temperature=getattr(teacher, "temperature",
                                                       prompts.TEMPERATURE),
                                   max_tokens=getattr(teacher, "max_tokens",
                                                      prompts.MAX_TOKENS))}) + "\n")
  fs.write_text(path, "".join(lines))  # whole (local: .tmp + rename; or gs://)
  return len(lines)


def read_results(path: str) -> dict[str, dict]:
  """custom_id -> result line of a Batch output file (errors kept, with their message)."""
  out = {}
  if not fs.exists(path):
    raise FileNotFoundError(f"{path}: no such Batch output file")
  with io.StringIO(fs.read_text(path)) as f:  # local or gs://
    for n, rec in rationales.json_lines(path, f):
      if not isinstance(rec, dict) or not isinstance(rec.get("custom_id"), str):
        raise ValueError(f"{path}:{n}: expected an object with a string 'custom_id' (OpenAI "
                         f"Batch output)")
      out[rec["custom_id"]] = rec
  return out


def reply_from_result(rec: dict, where: str) -> base.Reply:
  if rec.get("error"):
    raise base.TeacherError(f"{where}: batch error {rec['error']}")
  resp = rec.get("response") or {}
  status = int(resp.get("status_code", 200))
  body = resp.get("body") or {}
  if status != 200:
    raise base.TeacherError(f"{where}: batch status {status}: {str(body)[:200]}")
  try:
    choice = body["choices"][0]
    text = choice["message"]["content"] or ""
  except (KeyError, IndexError, TypeError):
    raise ValueError(f"{where}: response body has no choices[0].message.content") from None
  usage = body.get("usage") or {}
  return base.Reply(text, choice.get("finish_reason") or "stop",
                    int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


class BatchResults:
  """A teacher whose answers come from a Batch output file (same model / prompt version)."""

  needs_frames = True

  def __init__(self, path: str, teacher):
    self.path = path
    self.kind, self.model = teacher.kind, teacher.model
    self.prompt_version, self.prices = teacher.prompt_version, teacher.prices
    self._results = read_results(path)

  def ask(self, request: base.Request) -> base.Reply:
    key = job.cache_key(self.model, self.prompt_version, request.frames_sha256)
    rec = self._results.get(key)
    if rec is None:
      raise base.TeacherError(f"{self.path}: no result for clip {request.id} (custom_id {key})")
    return reply_from_result(rec, f"{self.path} custom_id {key}")

  def close(self) -> None:
    pass

