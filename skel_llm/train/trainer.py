"""The trainer loop: config -> mesh -> data -> sharded state -> jitted step -> checkpoints/eval.

Resume order (STYLE.md): the run's own workdir (latest checkpoint, with its
data position), then `config.init_from` (the previous stage's workdir, or
`hf:<folder>` for Hugging Face weights), then a fresh initialisation.

Multi-host (`jax.distributed`): every process runs every computation on the
global arrays (steps, PNG strips, evaluation, export gathers, checkpoints);
only process 0 writes TensorBoard, the strips, `result.json` and the exports.
Each process reads only its rows of every global batch and logs what it read
to its own `data_order.jsonl` (`data_order.process<i>.jsonl` with several
processes): the step, a digest of its rows and which rows they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import sys
import time
from typing import Any

import jax
import numpy as np
from flax import nnx

from skel_llm.train import build, checkpoint, optimizer, state as state_lib, step as step_lib
from skel_llm.train import sharding as shd
from skel_llm.train import validate

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
  pass


def _host_metrics(metrics: dict) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(metrics).items()}


FINITE_KEYS = ("loss", "l2_grads", "l2_params", "l2_updates")


def check_finite(step: int, metrics: dict[str, float]) -> None:
  bad = [k for k in FINITE_KEYS if k in metrics and not math.isfinite(metrics[k])]
  if bad:
    raise NonFiniteError(
        f"step {step}: non-finite {', '.join(f'{k}={metrics[k]}' for k in bad)}; training "
        f"stopped. Lower config.optim.lr, check the data, or set config.model.dtype='float32'")


class _Stopper:
  """SIGTERM -> finish the current step, save, exit (preemption on pods).

  With several processes a SIGTERM may reach some of them only, or at different steps; they
  must still stop together, as the save is collective. There the handler of jax's preemption
  service (installed by `jax.distributed.initialize`) stays in place and
  `multihost_utils.reached_preemption_sync_point` names the same step on every process.
  """

  def __init__(self):
    self.requested = False
    self._old = None
    self._synced = jax.process_count() > 1

  def __enter__(self):
    if self._synced:
      return self
    try:
      self._old = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: no handler, the default action stays
      self._old = None
    return self

  def stop_at(self, step: int) -> bool:
    """Whether to save and exit after `step`; call it after every step, on every process."""
    if self._synced and not self.requested:
      from jax.experimental import multihost_utils
      self.requested = multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def _handle(self, signum, frame):
    del signum, frame
    log.warning("SIGTERM: saving a checkpoint after this step and exiting")
    self.requested = True

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)


class Run:
  """Everything built from a config for one training run (reused by tests and benchmarks)."""

  def __init__(self, config, workdir: str | None = None,
               devices: list[jax.Device] | None = None):
    validate.check_config(config, workdir)
    self.config = config
    self.workdir = workdir
    self.mesh = shd.make_mesh(config.mesh, devices)
    dp = shd.data_parallel_size(self.mesh)
    if config.batch_size % dp:
      raise ValueError(f"config.batch_size {config.batch_size} is not divisible by the "
                       f"data-parallel size {dp} (mesh data x fsdp = {dict(self.mesh.shape)}); "
                       f"change config.batch_size or config.mesh")
    self.rules = shd.check_rules(config.sharding_rules)
    self.tokenizer = build.tokenizer(config)
    self.encoder = build.encoder(config, self.tokenizer)
    # This host reads the rows of each global batch that its devices hold.
    self.batch_rows = shd.process_batch_rows(self.mesh, config.batch_size)
    self.train_data, self.train_source = build.pipeline(config, self.encoder, "train",
                                                        rows=self.batch_rows)
    if config.get("epochs", 0) > 0:
      config.total_steps = max(1, math.ceil(config.epochs * len(self.train_data)
                                            / config.batch_size))
    self.schedule = optimizer.make_schedule(config.optim, config.total_steps)
    self.tx = optimizer.make_optimizer(config.optim, config.total_steps)
    self.make_model = build.model_factory(config, self.tokenizer)
    self.layout = state_lib.build_layout(self.make_model, trainable=config.trainable,
                                         tx=self.tx, mesh=self.mesh, rules=self.rules,
                                         master_dtype=config.get("master_dtype", "float32"))
    self.batch_shardings = None
    self._step_fn = None
    self._strip = None

  # -- state ------------------------------------------------------------------------------

  def init_state(self) -> dict:
    state, self.rng_vars = state_lib.init_state(self.make_model, self.layout,
                                                self.config.trainable, self.tx)
    return state

  def batch_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Global device arrays from this host's rows (`self.batch_rows`) of a training batch."""
    out = {}
    for k, v in batch.items():
      sh = shd.batch_sharding(self.mesh, v.ndim)
      out[k] = jax.make_array_from_process_local_data(
          sh, v, (self.train_data.global_batch,) + v.shape[1:])
    return out

  def global_batch_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Device arrays from a batch every host holds whole (evaluation)."""
    out = {}
    for k, v in batch.items():
      sh = shd.batch_sharding(self.mesh, v.ndim)
      out[k] = jax.make_array_from_callback(v.shape, sh, lambda idx, v=v: v[idx])
    return out

  def abstract_batch(self) -> dict:
    b = self.train_data.batch(0)
    return {k: jax.ShapeDtypeStruct((self.config.batch_size,) + v.shape[1:], v.dtype,
                                    sharding=shd.batch_sharding(self.mesh, v.ndim))
            for k, v in b.items()}

  def step_fn(self, max_traces: int | None = None):
    """The jitted train step with explicit shardings and donated state (built once).

    `max_traces` wraps the step in `chex.assert_max_traces` (tests: it compiles once).
    """
    if self._step_fn is None:
      raw = step_lib.make_train_step(self.layout.graphdef, self.rng_vars, self.tx,
                                     build.forward, self.schedule,
                                     dropout=bool(self.config.model.get("train_dropout", False)),
                                     forward_hidden=build.forward_hidden,
                                     loss_chunk=int(self.config.get("loss_chunk", 0)))
      raw = shd.with_activation_sharding(raw, self.rules, self.mesh)
      if max_traces is not None:
        import chex
        raw = chex.assert_max_traces(raw, n=max_traces)
      self._raw_step = raw
      batch_sh = {k: v.sharding for k, v in self.abstract_batch().items()}
      rep = shd.replicated(self.mesh)
      self._step_fn = jax.jit(raw, in_shardings=(self.layout.shardings, batch_sh, rep),
                              out_shardings=(self.layout.shardings, rep), donate_argnums=(0,))
    return self._step_fn

  def render_fn(self, out_sharding: jax.sharding.Sharding | None = None):
    """Jitted `frames(state, positions, lengths) -> float32[B, n, S, S, 3]` (midpoint frames).

    `out_sharding=shd.replicated(mesh)` gives frames that every host can read whole.
    """
    graphdef, rng_vars = self.layout.graphdef, self.rng_vars

    def frames(state, positions, lengths):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      return model.render(positions, lengths, None)
    return jax.jit(frames, out_shardings=out_sharding)

  def strip_frames(self, state: dict, count: int = 4) -> np.ndarray:
    """float32[C, n, S, S, 3] frames of the first `count` training clips (the PNG strips).

    Every process must call it (the state spans all hosts): the clips are the same global
    samples on each, and the frames come back replicated, whole on every host.
    """
    if self._strip is None:
      samples = [self.train_data.sample(g) for g in range(min(count, self.config.batch_size))]
      rep = shd.replicated(self.mesh)
      self._strip = (self.render_fn(rep),
                     jax.device_put(np.stack([s["positions"] for s in samples]), rep),
                     jax.device_put(np.stack([s["num_frames"] for s in samples]), rep))
    render, positions, lengths = self._strip
    return np.asarray(render(state, positions, lengths))

  def logits_fn(self):
    """Jitted `logits(state, frames, input_ids, input_mask)` for generation."""
    graphdef, rng_vars = self.layout.graphdef, self.rng_vars

    def logits(state, frames, input_ids, input_mask):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      return model.logits_from_frames(frames, input_ids, input_mask)
    return jax.jit(logits)

  def restore_or_init(self, ckpt: checkpoint.Checkpointer | None) -> tuple[dict, int]:
    """(state, first step): own checkpoint, else init_from, else fresh."""
    state = self.init_state()
    if ckpt is not None and ckpt.latest_step() is not None:
      state, position, step = ckpt.restore(self.layout.abstract)
      if position.get("seed") != self.config.data.seed:
        raise ValueError(f"{ckpt.directory}: checkpoint was written with data seed "
                         f"{position.get('seed')}, the config has {self.config.data.seed}")
      log.info("resumed from %s at step %d", ckpt.directory, step)
      return state, int(position["next_step"])
    init_from = self.config.get("init_from", "")
    if init_from:
      state = build.load_init_from(self, state, init_from)
    return state, 0


def _row_runs(rows: list[int]) -> list[list[int]]:
  """[[start, stop), ...] runs of consecutive rows (one run per host in the usual layout)."""
  runs: list[list[int]] = []
  for r in rows:
    if runs and runs[-1][1] == r:
      runs[-1][1] = r + 1
    else:
      runs.append([r, r + 1])
  return runs


def _digest(batch: dict[str, np.ndarray]) -> str:
  h = hashlib.sha1()
  for k in sorted(batch):
    h.update(np.ascontiguousarray(batch[k]).tobytes())
  return h.hexdigest()[:16]


def _write_json(path: str, obj: Any) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2)
  os.replace(tmp, path)


class _FiniteCheck:
  """Checks every step's loss and norms on the host, one step behind the device.

  Fetching step k's four scalars after step k + 1 has been dispatched keeps the device
  busy while the host waits, yet the run still stops at the first non-finite step, naming
  it; `flush()` checks the newest step at once (before a checkpoint is written).
  """

  def __init__(self):
    self._pending: list[tuple[int, dict]] = []

  def push(self, step: int, metrics: dict) -> None:
    self.flush()
    self._pending.append((step, {k: metrics[k] for k in FINITE_KEYS if k in metrics}))

  def flush(self) -> None:
    for step, metrics in self._pending:
      check_finite(step, _host_metrics(metrics))
    self._pending.clear()


class _closing:
  """Waits for pending checkpoint writes and closes the writer however the loop ends."""

  def __init__(self, ckpt, writer):
    self.ckpt, self.writer = ckpt, writer

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if exc[0] is not None:
      self.ckpt.close()
      self.writer.close()


def train_and_evaluate(config, workdir: str,
                       devices: list[jax.Device] | None = None) -> dict[str, Any]:
  """Runs (or resumes) one stage in `workdir`; returns the final metrics and evaluation.

  `devices` restricts the mesh to some local devices (tests); default all of them.
  """
  from skel_llm.eval import recognition
  from skel_llm.train import summary

  os.makedirs(workdir, exist_ok=True)
  run = Run(config, workdir, devices)
  is_main = jax.process_index() == 0
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                 keep=config.checkpoint.keep,
                                 every_steps=config.checkpoint.every_steps,
                                 async_save=config.checkpoint.async_save)
  state, start = run.restore_or_init(ckpt)
  rng = jax.random.key(config.seed)
  writer = summary.Writer(workdir if is_main else None)
  lay = run.layout
  print(f"[skel_llm] task {config.data.task} (eval {config.data.eval_task}); "
        f"mesh {dict(run.mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform}"
        f" devices; trainable {lay.num_params('params'):,} / frozen {lay.num_params('frozen'):,} "
        f"numbers; {len(run.train_data)} training clips; steps {start} -> {config.total_steps}",
        flush=True)
  if start == 0:
    frames = run.strip_frames(state)
    if is_main:
      summary.save_strip(os.path.join(workdir, "frames_start.png"), frames)
  train_step = run.step_fn()
  last = {}
  t0, t_last, n_last = time.time(), time.time(), start
  stop_after = int(config.get("stop_after_step", -1))
  bar = summary.Progress(start, config.total_steps, enabled=is_main)
  # One line per step and process: which data it read (a resumed run must continue the same
  # order; the processes' rows together make the global batch).
  order_name = ("data_order.jsonl" if jax.process_count() == 1
                else f"data_order.process{jax.process_index()}.jsonl")
  order_log = open(os.path.join(workdir, order_name), "a")
  rows = _row_runs(run.batch_rows)
  with _Stopper() as stopper, _closing(ckpt, writer):
    checked = _FiniteCheck()
    for step, batch in run.train_data.iterate(start, config.total_steps - start,
                                              prefetch=config.data.get("prefetch", 2)):
      state, metrics = train_step(state, run.batch_to_device(batch), rng)
      done = step + 1
      checked.push(done, metrics)
      order_log.write(json.dumps({"step": done, "digest": _digest(batch), "rows": rows}) + "\n")
      order_log.flush()
      stopping = stopper.stop_at(done)
      if done % config.log_every == 0 or done == config.total_steps or stopping:
        last = _host_metrics(metrics)
        check_finite(done, last)
        now = time.time()
        last["steps_per_s"] = (done - n_last) / max(now - t_last, 1e-9)
        t_last, n_last = now, done
        writer.scalars(done, last)
        bar.update(done, last)
      if (done % config.checkpoint.every_steps == 0 or done == config.total_steps
          or stopping or done == stop_after):
        checked.flush()  # a non-finite state is never written
        ckpt.save(done, state, {"next_step": done, "seed": config.data.seed}, force=True)
      if stopping:
        ckpt.close()
        writer.close()
        order_log.close()
        sys.exit(143)
      if stop_after > 0 and done >= stop_after:
        # Test knob: hold here with the checkpoint committed, as a job waiting to be killed.
        ckpt.wait()
        if jax.process_count() > 1:
          from jax.experimental import multihost_utils
          multihost_utils.sync_global_devices("stop_after_step")
        if is_main:
          _write_json(os.path.join(workdir, "stopped.json"), {"step": done})
        print(f"[skel_llm] reached config.stop_after_step={stop_after}; waiting", flush=True)
        while True:
          time.sleep(1.0)
    checked.flush()
  bar.close()
  order_log.close()
  ckpt.wait()
  train_time = time.time() - t0
  previous = os.path.join(workdir, "result.json")
  if start >= config.total_steps and os.path.exists(previous):
    # Nothing left to train (a rerun of a finished stage): keep the training record.
    with open(previous) as f:
      earlier = json.load(f)
    last, train_time = earlier.get("train", last), earlier.get("train_seconds", train_time)
  result: dict[str, Any] = {"train": last, "train_seconds": train_time}
  frames = run.strip_frames(state)
  if is_main:
    summary.save_strip(os.path.join(workdir, "frames_end.png"), frames)
  if config.eval.num_clips > 0:
    ev = recognition.evaluate(run, state, write_to=workdir if is_main else None)
    result["eval"] = ev
    writer.scalars(config.total_steps, {"eval/accuracy": ev["accuracy"]})
    print(f"[skel_llm] held-out accuracy {100 * ev['accuracy']:.1f}% on {ev['num_clips']} clips "
          f"({ev['num_classes']} candidates; chance {100 * ev['chance']:.1f}%)", flush=True)
  build.export(run, state, workdir)  # every process: it gathers sharded variables
  if is_main:
    _write_json(os.path.join(workdir, "result.json"), result)
  writer.close()
  ckpt.close()
  return result
