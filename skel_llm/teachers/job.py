"""The teach job: clips -> (frames) -> teacher -> validated JSON lines, resumable after any crash.

Files, for `--out=R.jsonl`:
  R.jsonl          kept rationales, one JSON object per clip (`LINE_FIELDS`)
  R.rejects.jsonl  replies that failed `base.validate`, with the reason
  R.cache.jsonl    every reply received, keyed by `cache_key(model, prompt version, frames)`
  R.frames/        the rendered frames as PNG (optional, `frames_dir`)

Every line is appended with one `os.write`, then flushed and fsynced, so after a crash (even
SIGKILL) a file holds whole lines plus at most one torn tail, which the next run cuts off
before appending. A rerun skips clips already in R.jsonl or R.rejects.jsonl and answers clips
whose request is in the cache without asking the teacher again; clips that failed after
retries are not written anywhere and are asked again next time. A file written with another
prompt version or teacher model is refused (mixing would train on two different targets).

`--out` may be on object storage (`gs://bucket/rationales.jsonl`, through `skel_llm.fs`):
there is no append, so each file is held in memory and uploaded whole (one all-or-nothing
object write) every `REMOTE_SYNC_LINES` new lines or `REMOTE_SYNC_SECONDS`, and when the job
ends or stops with an exception. A process killed outright loses at most the lines since the
last upload; those clips are asked again on the next run (the cache upload is lost with them).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from skel_llm import fs
from skel_llm.teachers import base

REMOTE_SYNC_LINES = 64
REMOTE_SYNC_SECONDS = 30.0

LINE_FIELDS = ("id", "label", "rationale", "teacher", "model", "prompt_version", "frames_sha256",
               "renderer_sha256", "finish_reason", "prompt_tokens", "completion_tokens")

REASON_KINDS = ("wrong label", "no final 'Label:' line", "truncated at max_tokens",
                "empty reply", "label line")


def reason_kind(reason: str) -> str:
  for kind in REASON_KINDS:
    if reason.startswith(kind):
      return kind
  return reason


def cache_key(model: str, prompt_version: str, frames_sha256: str) -> str:
  return hashlib.sha256(json.dumps([model, prompt_version, frames_sha256]).encode()).hexdigest()


def array_sha256(x: np.ndarray) -> str:
  x = np.ascontiguousarray(x)
  h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
  h.update(x.tobytes())
  return h.hexdigest()


class AppendLog:
  """An append-only JSONL file whose lines are written whole or not at all (local: appended
  and fsynced one by one; remote: uploaded whole, see the module docstring)."""

  def __init__(self, path: str, *, sync_lines: int = REMOTE_SYNC_LINES,
               sync_seconds: float = REMOTE_SYNC_SECONDS):
    self.path = path
    self.records: list[dict] = []
    self.repaired = 0  # bytes of a torn last line cut off on open
    self._remote = fs.is_remote(path)
    self._fd = -1
    blob = b""
    self._exists = True
    if self._remote:
      self._exists = fs.exists(path)
      if self._exists:
        blob = fs.path(path).read_bytes()
    elif os.path.exists(path):
      with open(path, "rb") as f:
        blob = f.read()
    end = blob.rfind(b"\n") + 1
    if end < len(blob):
      self.repaired = len(blob) - end
      if self._remote:
        fs.write_bytes(path, blob[:end])
      else:
        with open(path, "r+b") as f:
          f.truncate(end)
          f.flush()
          os.fsync(f.fileno())
    for n, line in enumerate(blob[:end].splitlines(), 1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except ValueError as e:
        raise ValueError(f"{path}:{n}: not a JSON line ({e}); this file was not written by "
                         f"skel_llm.teach, or was edited") from None
      if not isinstance(rec, dict):
        raise ValueError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
      self.records.append(rec)
    if self._remote:
      self._blob = bytearray(blob[:end])
      self._unsynced, self._synced_at = 0, time.monotonic()
      self._sync_lines, self._sync_seconds = int(sync_lines), float(sync_seconds)
    else:
      self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

  def append(self, record: dict) -> None:
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    if self._remote:
      self._blob += data
      self._unsynced += 1
      self.records.append(record)
      if (self._unsynced >= self._sync_lines
          or time.monotonic() - self._synced_at >= self._sync_seconds):
        self.sync()
      return
    written = os.write(self._fd, data)
    if written != len(data):  # a full disk: cut the partial line so the file stays whole
      os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_END) - written)
      raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
    os.fsync(self._fd)
    self.records.append(record)

  def sync(self) -> None:
    """Remote: uploads the whole file when lines were added since the last upload (or, as a
    local file is created on open, when it does not exist yet)."""
    if self._remote and (self._unsynced or not self._exists):
      fs.write_bytes(self.path, bytes(self._blob))
      self._unsynced, self._synced_at, self._exists = 0, time.monotonic(), True

  def close(self) -> None:
    if self._remote:
      self.sync()
    elif self._fd >= 0:
      os.close(self._fd)
      self._fd = -1


@dataclasses.dataclass(frozen=True)
class ClipItem:
  id: str
  label: str
  candidates: Sequence[str]
  positions: np.ndarray  # float32[T, P, J, 3]
  topology: str


@dataclasses.dataclass
class Summary:
  total: int = 0
  already_done: int = 0
  kept: int = 0
  rejected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  failed: dict = dataclasses.field(default_factory=dict)  # id -> error
  from_cache: int = 0
  asked: int = 0
  prompt_tokens: int = 0
  completion_tokens: int = 0
  cost_usd: float | None = None
  seconds: float = 0.0

  def as_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["rejected"] = dict(self.rejected)
    d["failed"] = len(self.failed)
    d["failed_ids"] = sorted(self.failed)[:20]
    return d

  def text(self) -> str:
    rej = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items())) or "none"
    cost = f", estimated cost ${self.cost_usd:.4f}" if self.cost_usd is not None else ""
    out = (f"[teach] {self.total} clips: {self.already_done} already done, {self.kept} kept, "
           f"{sum(self.rejected.values())} rejected ({rej}), {len(self.failed)} failed after "
           f"retries; {self.asked} asked, {self.from_cache} from the cache; tokens "
           f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion{cost}; "
           f"{self.seconds:.1f} s")
    if self.failed:
      first = next(iter(sorted(self.failed)))
      out += f"\n[teach] first failure: {first}: {self.failed[first]}"
    return out


def side_paths(out: str) -> dict[str, str]:
  stem = out[:-len(".jsonl")] if out.endswith(".jsonl") else out
  return {"rejects": stem + ".rejects.jsonl", "cache": stem + ".cache.jsonl",
          "frames": stem + ".frames"}


def _check_same_run(logs: dict[str, AppendLog], teacher: base.Teacher) -> None:
  for log in logs.values():
    for n, rec in enumerate(log.records, 1):
      pv, model = rec.get("prompt_version"), rec.get("model")
      if pv != teacher.prompt_version or model != teacher.model:
        raise ValueError(
            f"{log.path}:{n} was written by teacher model {model!r} with prompt version "
            f"{pv!r}, this run uses {teacher.model!r} with {teacher.prompt_version!r}; refusing "
            f"to mix them in one file. Write to a new --out (or move {log.path} and its "
            f".rejects/.cache files away); to continue that file, run its teacher and prompt "
            f"version again")


class _Progress:
  def __init__(self, total: int, enabled: bool):
    self.total, self.enabled = total, enabled
    self.t0 = self.last = time.time()

  def update(self, done: int, s: Summary, force: bool = False) -> None:
    now = time.time()
    if not self.enabled or (now - self.last < 0.5 and not force):
      return
    self.last = now
    rate = done / max(now - self.t0, 1e-9)
    tok = s.prompt_tokens + s.completion_tokens
    sys.stderr.write(f"\r[teach] {done}/{self.total} clips, {rate:.1f} clips/s, {tok:,} tokens, "
                     f"kept {s.kept}, rejected {sum(s.rejected.values())}, failed "
                     f"{len(s.failed)}   ")
    sys.stderr.flush()


def _save_frames(folder: str, clip_id: str, frames: np.ndarray) -> None:
  d = fs.join(folder, clip_id.replace("/", "__"))
  if not fs.is_remote(d):
    os.makedirs(d, exist_ok=True)
  for i, f in enumerate(frames):  # each PNG written whole (local: .tmp + rename)
    fs.save_image(fs.join(d, f"frame{i + 1:02d}.png"), np.asarray(f, np.uint8))


def run(items: Iterable[ClipItem], teacher: base.Teacher, out: str, *,
        render: Callable[[list[ClipItem]], list[np.ndarray]] | None = None,
        renderer_sha256: str | None = None, concurrency: int = 4, limit: int | None = None,
        save_frames: bool = False, render_batch: int = 16, progress: bool = True) -> Summary:
  """Asks `teacher` about every clip not done yet; returns the counted summary.

  Args:
    items: the clips, in a fixed order.
    teacher: a `base.Teacher`.
    out: the JSONL path (side files next to it, see the module docstring).
    render: clips -> uint8[n, S, S, 3] frames each (required when the teacher needs frames;
      when given to a frame-less teacher the frames are still hashed and saved).
    renderer_sha256: digest of the renderer weights, recorded in every line.
    concurrency: requests in flight at once.
    limit: stop after this many clips (counted over all clips, done or not).
    save_frames: write the frames as PNG under R.frames/.
  """
  if teacher.needs_frames and render is None:
    raise ValueError(f"teacher {teacher.kind}:{teacher.model} reads frames: give --renderer")
  if concurrency < 1:
    raise ValueError(f"--concurrency must be >= 1, got {concurrency}")
  paths = side_paths(out)
  if not fs.is_remote(out):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  logs = {"out": AppendLog(out), "rejects": AppendLog(paths["rejects"]),
          "cache": AppendLog(paths["cache"])}
  try:
    _check_same_run(logs, teacher)
    return _run(items, teacher, logs, paths, render=render, renderer_sha256=renderer_sha256,
                concurrency=concurrency, limit=limit, save_frames=save_frames,
                render_batch=render_batch, progress=progress)
  finally:
    for log in logs.values():
      log.close()


def _run(items, teacher, logs, paths, *, render, renderer_sha256, concurrency, limit,
         save_frames, render_batch, progress) -> Summary:
  t0 = time.time()
  done_ids = {r.get("id") for r in logs["out"].records} | {
      r.get("id") for r in logs["rejects"].records}
  cache = {r["key"]: r for r in logs["cache"].records if "key" in r}
  items = list(items)
  if limit is not None:
    items = items[:limit]
  s = Summary(total=len(items))
  todo = []
  for it in items:
    if it.id in done_ids:
      s.already_done += 1
    else:
      todo.append(it)
  bar = _Progress(len(items), progress)
  finished = s.already_done

  def record(it: ClipItem, req: base.Request, reply: base.Reply) -> None:
    nonlocal finished
    line = {"id": it.id, "label": it.label, "rationale": reply.text.strip(),
            "teacher": teacher.kind, "model": teacher.model,
            "prompt_version": teacher.prompt_version,
            "frames_sha256": req.frames_sha256 if req.frames is not None else None,
            "renderer_sha256": renderer_sha256 if req.frames is not None else None,
            "finish_reason": reply.finish_reason, "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens}
    reason = base.validate(reply.text, it.label, reply.finish_reason)
    if reason is None:
      logs["out"].append(line)
      s.kept += 1
    else:
      line["rationale"] = reply.text
      line["reason"] = reason
      logs["rejects"].append(line)
      s.rejected[reason_kind(reason)] += 1
    finished += 1
    bar.update(finished, s)

  def ask(req: base.Request) -> base.Reply:
    return teacher.ask(req)

  with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
    pending: dict[concurrent.futures.Future, tuple[ClipItem, base.Request, str]] = {}

    def drain(block_until: int) -> None:
      while len(pending) > block_until:
        ready, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for fut in ready:
          it, req, key = pending.pop(fut)
          try:
            reply = fut.result()
          except base.TeacherError as e:
            s.failed[it.id] = str(e)
            continue
          s.asked += 1
          s.prompt_tokens += reply.prompt_tokens
          s.completion_tokens += reply.completion_tokens
          logs["cache"].append({"key": key, "id": it.id, "model": teacher.model,
                                "prompt_version": teacher.prompt_version,
                                **dataclasses.asdict(reply)})
          record(it, req, reply)

    for start in range(0, len(todo), render_batch):
      chunk = todo[start:start + render_batch]
      frames = render(chunk) if render is not None else [None] * len(chunk)
      for it, fr in zip(chunk, frames):
        digest = array_sha256(fr) if fr is not None else array_sha256(
            np.asarray(it.positions, np.float32))
        if fr is not None and save_frames:
          _save_frames(paths["frames"], it.id, fr)
        req = base.Request(id=it.id, label=it.label, candidates=list(it.candidates),
                           frames=fr, positions=np.asarray(it.positions, np.float32),
                           topology=it.topology, frames_sha256=digest)
        key = cache_key(teacher.model, teacher.prompt_version, digest)
        hit = cache.get(key)
        if hit is not None:
          s.from_cache += 1
          record(it, req, base.Reply(hit["text"], hit.get("finish_reason", "stop"),
                                     int(hit.get("prompt_tokens", 0)),
                                     int(hit.get("completion_tokens", 0))))
          continue
        drain(2 * concurrency - 1)
        pending[pool.submit(ask, req)] = (it, req, key)
    drain(0)
  bar.update(finished, s, force=True)
  if progress:
    sys.stderr.write("\n")
  s.seconds = time.time() - t0
  if teacher.prices is not None:
    pin, pout = teacher.prices
    s.cost_usd = (s.prompt_tokens * pin + s.completion_tokens * pout) / 1e6
  return s
