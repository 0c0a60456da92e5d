"""A trained skel_llm model behind a batching queue: chat requests in, generated replies out.

`Engine.load(config, workdir)` rebuilds the run's model from its config and restores the
latest checkpoint (`Engine.load_hf(config, folder)` reads a transformers / InternVL folder
instead, with a fresh renderer). Requests are parsed into (user text with `<image>`
placeholders, float32[n, S, S, 3] frames); a worker thread gathers whatever requests are
waiting (up to `max_batch`, waiting `batch_wait_s` for more), pads them to a fixed batch of
`max_batch` rows and one static prompt length, and generates them in one jitted call
(`skel_llm.models.generate`, KV cache), so a burst of concurrent requests costs one
compilation and one forward pass per token.

Content parts accepted in the user message (OpenAI chat format plus one of ours):
  {"type": "text", "text": ...}
  {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}  one frame
  {"type": "skeleton", "skeleton": {"joints": [[[[x, y, z] * J] * P] * T]}} or
  {"type": "skeleton", "skeleton": {"path": "<file skel_llm.skeleton.load reads>"}}
      rendered with the run's renderer into config.render.num_frames frames (`joints` in the
      run's config.render.topology; a file in its own, placed by config.data.placement and
      drawn by the run's renderer transferred to that topology when it is another)
The prompt must hold exactly config.render.num_frames images in all.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import queue
import threading
import time

import jax
import numpy as np
from flax import nnx

from skel_llm.text import chat


class RequestError(ValueError):
  """A request the server answers with HTTP 400 (names the field and what was expected)."""


@dataclasses.dataclass
class Job:
  user: str
  frames: np.ndarray  # float32[n, S, S, 3]
  max_tokens: int
  temperature: float
  done: threading.Event = dataclasses.field(default_factory=threading.Event)
  text: str = ""
  finish_reason: str = "stop"
  prompt_tokens: int = 0
  completion_tokens: int = 0
  error: Exception | None = None


def decode_image(url: str, size: int, where: str) -> np.ndarray:
  """float32[S, S, 3] in [0, 1] from a PNG/JPEG data URI of side `size`."""
  from PIL import Image
  if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
    raise RequestError(f"{where}: expected a data:image/...;base64 URI (remote URLs are not "
                       f"fetched)")
  try:
    img = Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1], validate=True)))
    arr = np.asarray(img.convert("RGB"), np.float32) / 255.0
  except Exception as e:  # PIL raises many types for a bad image
    raise RequestError(f"{where}: not a readable image ({e})") from None
  if arr.shape[:2] != (size, size):
    raise RequestError(f"{where}: image is {arr.shape[1]}x{arr.shape[0]}, the model reads "
                       f"{size}x{size} frames")
  return arr


class Engine:
  """Batched generation over one model (see the module docstring)."""

  def __init__(self, run, state, *, model_name: str, max_batch: int = 4,
               max_new_tokens: int = 160, batch_wait_s: float = 0.02):
    self.run, self.config = run, run.config
    self.model_name = model_name
    self.max_batch, self.max_new_tokens = int(max_batch), int(max_new_tokens)
    self.batch_wait_s = float(batch_wait_s)
    self.num_frames = int(self.config.render.num_frames)
    self.image_size = int(self.config.render.image_size)
    self.encoder = run.encoder
    self._state = state
    self._model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
    self._render = None
    self._queue: queue.Queue[Job] = queue.Queue()
    self.batches: list[int] = []  # rows of each generate call (tests read it)
    self._stop = False
    self._worker = threading.Thread(target=self._loop, daemon=True, name="skel_llm-engine")
    self._worker.start()

  @property
  def state(self) -> dict:
    """The restored train state (params, frozen) the model was merged from."""
    return self._state

  @classmethod
  def load(cls, config, workdir: str, devices=None, **kwargs) -> "Engine":
    """The run's model from its latest checkpoint (`devices`: a subset of the local ones;
    `workdir` local or gs://)."""
    import os

    from skel_llm import fs
    from skel_llm.train import checkpoint, trainer
    from skel_llm.train import state as state_lib
    ckpt_dir = fs.join(workdir, "checkpoints")
    if not fs.isdir(ckpt_dir):
      raise FileNotFoundError(f"--workdir {workdir} has no checkpoints/; is it a skel_llm run?")
    run = trainer.Run(config, None, devices)
    ckpt = checkpoint.Checkpointer(ckpt_dir, keep=10**6, async_save=False)
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"--workdir {workdir}: no committed checkpoint step")
    # The rng streams merge needs, without a fresh state beside the restored one.
    run.rng_vars = state_lib.init_rng_vars(run.make_model, run.config.trainable)
    state, _, step = ckpt.restore(run.layout.abstract)
    ckpt.close()
    name = kwargs.pop("model_name", None) or f"{os.path.basename(os.path.normpath(workdir))}@{step}"
    return cls(run, state, model_name=name, **kwargs)

  @classmethod
  def load_hf(cls, config, folder: str, **kwargs) -> "Engine":
    import os

    from skel_llm.train import build, trainer
    run = trainer.Run(config, None)
    state = build.load_init_from(run, "hf:" + folder)
    name = kwargs.pop("model_name", None) or os.path.basename(os.path.normpath(folder))
    return cls(run, state, model_name=name, **kwargs)

  # -- requests --------------------------------------------------------------------------

  def parse(self, body: dict) -> Job:
    """A `Job` from a chat-completions request body; RequestError names what is wrong."""
    if not isinstance(body, dict):
      raise RequestError("request body: expected a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
      raise RequestError("messages: expected a non-empty list")
    user_parts = []
    frames = []
    for mi, m in enumerate(msgs):
      if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
        raise RequestError(f"messages[{mi}]: expected {{'role': system|user|assistant, ...}}")
      if m["role"] != "user":
        continue  # the model was trained with its own system prompt and single turns
      content = m.get("content")
      if isinstance(content, str):
        user_parts.append(content)
        continue
      if not isinstance(content, list):
        raise RequestError(f"messages[{mi}].content: expected a string or a list of parts")
      for pi, part in enumerate(content):
        where = f"messages[{mi}].content[{pi}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
          user_parts.append(str(part.get("text", "")))
        elif kind == "image_url":
          url = (part.get("image_url") or {}).get("url")
          frames.append(decode_image(url, self.image_size, where))
          user_parts.append(" " + chat.IMAGE_PLACEHOLDER + "\n")
        elif kind == "skeleton":
          rendered = self._render_skeleton(part.get("skeleton"), where)
          frames.extend(rendered)
          user_parts.append("".join(f"Frame{i + 1}: {chat.IMAGE_PLACEHOLDER}\n"
                                    for i in range(len(rendered))))
        else:
          raise RequestError(f"{where}: unknown content part type {kind!r}; expected text, "
                             f"image_url or skeleton")
    if len(frames) != self.num_frames:
      raise RequestError(f"messages: {len(frames)} images, the model reads exactly "
                         f"{self.num_frames} frames per prompt")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", self.max_new_tokens))
    if not isinstance(max_tokens, int) or max_tokens < 1:
      raise RequestError(f"max_tokens: expected a positive integer, got {max_tokens!r}")
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, (int, float)) or temperature < 0:
      raise RequestError(f"temperature: expected a number >= 0, got {temperature!r}")
    return Job(user="".join(user_parts), frames=np.stack(frames).astype(np.float32),
               max_tokens=min(max_tokens, self.max_new_tokens), temperature=float(temperature))

  def _render_skeleton(self, spec, where: str) -> list[np.ndarray]:
    from skel_llm.skeleton import topology as topology_lib
    if not isinstance(spec, dict) or not ("joints" in spec or "path" in spec):
      raise RequestError(f"{where}.skeleton: expected {{'joints': [T][P][J][3]}} or "
                         f"{{'path': file}}")
    if "path" in spec:  # any file skeleton.load reads, in its own topology
      try:
        pos, topology = self.file_clip(str(spec["path"]))
        return list(self.render_positions(pos, topology))
      except (OSError, ValueError) as e:
        raise RequestError(f"{where}.skeleton.path: {e}") from None
    topo = topology_lib.get(self.topology)
    try:
      pos = np.asarray(spec["joints"], np.float32)
    except (TypeError, ValueError):
      raise RequestError(f"{where}.skeleton.joints: expected numbers [T][P][J][3]") from None
    if pos.ndim == 3:
      pos = pos[:, None]
    if pos.ndim != 4 or pos.shape[2:] != (topo.num_joints, 3):
      raise RequestError(f"{where}.skeleton.joints: shape {pos.shape}, expected "
                         f"[T, P, {topo.num_joints}, 3] ({topo.name}, metres, +y up)")
    return list(self.render_positions(pos))

  @property
  def topology(self) -> str:
    """The registry name of the topology the run's renderer draws (config.render.topology)."""
    return str(self.config.render.topology)

  def file_clip(self, path: str) -> tuple[np.ndarray, object]:
    """(float32[T, P, J, 3] camera metres, topology) of a file `skel_llm.skeleton.load` reads,
    placed by the run's `config.data.placement` (`skel_llm.render.camera.place`; 'auto' picks
    the rule from the file's topology). The topology is the file's: a registry name, or the
    file's own `Topology` for a BVH skeleton; `render_positions` draws any of them."""
    from skel_llm import skeleton
    from skel_llm.render import camera
    from skel_llm.skeleton import topology as topology_lib
    rec = skeleton.load(path)
    topo = rec.topology
    pos = camera.place(rec.positions, self.config.data.get("placement", "auto"), topo,
                       is_2d=rec.is_2d)
    return pos, (topo.name if topo.name in topology_lib.names() else topo)

  def render_positions(self, pos: np.ndarray, topology=None) -> np.ndarray:
    """float32[n, S, S, 3]: the run's renderer on one clip float32[T, P, J, 3] (the first
    config.data.max_frames frames and max_persons persons), midpoint frames as evaluated.

    `topology` (a registry name or a `Topology`; default the run's) other than the run's:
    the renderer transferred to it, as cross-format evaluation draws it
    (`skel_llm.eval.predict.PredictFns.render`, which caches the weights per topology).
    """
    from skel_llm.skeleton import topology as topology_lib
    topology = self.topology if topology is None else topology
    topo = topology_lib.get(topology) if isinstance(topology, str) else topology
    d = self.config.data
    pos = pos[:d.max_frames, :d.max_persons]
    if pos.ndim != 4 or pos.shape[2:] != (topo.num_joints, 3):
      raise ValueError(f"positions of shape {pos.shape}, expected [T, P, {topo.num_joints}, 3] "
                       f"({topo.name})")
    padded = np.zeros((1, d.max_frames, d.max_persons, topo.num_joints, 3), np.float32)
    padded[0, :pos.shape[0], :pos.shape[1]] = pos
    lengths = np.asarray([pos.shape[0]], np.int32)
    if self.is_transferred(topology):
      out = self.run.predict_fns().render(self._state, padded, lengths, topology)
    else:
      if self._render is None:
        self._render = self.run.render_fn()
      out = self._render(self._state, padded, lengths)
    return np.asarray(out)[0]

  def is_transferred(self, topology) -> bool:
    """Whether a clip of `topology` is drawn by the run's renderer transferred to it."""
    name = topology if isinstance(topology, str) else topology.name
    return name != self.topology

  def submit(self, job: Job, timeout: float | None = None) -> Job:
    self._queue.put(job)
    if not job.done.wait(timeout):
      raise TimeoutError("generation did not finish in time")
    if job.error is not None:
      raise job.error
    return job

  # -- the batching worker ---------------------------------------------------------------

  def _loop(self) -> None:
    while not self._stop:
      try:
        first = self._queue.get(timeout=0.1)
      except queue.Empty:
        continue
      jobs = [first]
      deadline = time.time() + self.batch_wait_s
      while len(jobs) < self.max_batch:
        try:
          jobs.append(self._queue.get(timeout=max(0.0, deadline - time.time())))
        except queue.Empty:
          break
      # One sampling setting per call: others wait for the next batch.
      same = [j for j in jobs if j.temperature == first.temperature]
      for j in jobs:
        if j.temperature != first.temperature:
          self._queue.put(j)
      try:
        self._generate(same)
      except Exception as e:  # reported to every waiting request
        for j in same:
          j.error = e
      for j in same:
        j.done.set()

  def _generate(self, jobs: list[Job]) -> None:
    from skel_llm import models
    enc = self.encoder
    rows = [enc.prompt_ids(j.user) for j in jobs]
    longest = max(len(r) for r in rows)
    if longest > enc.max_len:
      raise RequestError(f"prompt is {longest} tokens; the model was trained with max_len "
                         f"{enc.max_len}")
    # Left padding to the encoder's fixed length: one compiled shape for every batch.
    b, length = self.max_batch, enc.max_len
    ids = np.full((b, length), enc.pad_id, np.int32)
    mask = np.zeros((b, length), np.int32)
    for i, r in enumerate(rows):
      ids[i, length - len(r):] = r
      mask[i, length - len(r):] = 1
    for i in range(len(rows), b):  # filler rows repeat the first prompt
      ids[i], mask[i] = ids[0], mask[0]
    frames = np.zeros((b,) + jobs[0].frames.shape, np.float32)
    for i, j in enumerate(jobs):
      frames[i] = j.frames
    frames[len(jobs):] = jobs[0].frames
    temp = jobs[0].temperature
    rng = jax.random.key(int(time.time_ns() % (2**31))) if temp > 0 else None
    new = models.generate(self._model.mllm, ids, mask, self._model.pixel_values(frames),
                          max_new_tokens=self.max_new_tokens, temperature=temp,
                          stop_tokens=(enc.im_end_id,), pad_id=enc.pad_id, rng=rng)
    new = np.asarray(new)
    self.batches.append(len(jobs))
    for i, j in enumerate(jobs):
      out = new[i, :j.max_tokens]
      stop = np.nonzero(out == enc.im_end_id)[0]
      if stop.size:
        out, j.finish_reason = out[:stop[0]], "stop"
        j.completion_tokens = int(stop[0]) + 1
      else:
        j.finish_reason = "length"
        j.completion_tokens = int(out.size)
      j.text = enc.decode(out)
      j.prompt_tokens = len(rows[i])

  def close(self) -> None:
    self._stop = True
    self._worker.join(timeout=5)

