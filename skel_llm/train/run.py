"""`Run`: everything built from a config for one training run (mesh, data, model layout,
jitted step, renderer, prediction functions, evaluators), reused by the trainer, the
evaluation CLI, tests and benchmarks.

Resume order (STYLE.md): the run's own workdir (latest checkpoint, with its data position),
then `config.init_from` (the previous stage's workdir, or `hf:<folder>` for Hugging Face
weights), then a fresh initialisation.
"""

from __future__ import annotations

import logging
import math

import jax
import numpy as np
from flax import nnx

from skel_llm.train import build, checkpoint, optimizer, state as state_lib, step as step_lib
from skel_llm.train import sharding as shd
from skel_llm.train import validate

log = logging.getLogger(__name__)


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
    self._step_fn = None
    self._strip = None
    self._predict = None

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
                                     build.forward_with_stats, self.schedule,
                                     dropout=bool(self.config.model.get("train_dropout", False)),
                                     forward_hidden=build.forward_hidden,
                                     loss_chunk=int(self.config.get("loss_chunk", 0)))
      raw = shd.with_activation_sharding(raw, self.rules, self.mesh)
      if max_traces is not None:
        import chex
        raw = chex.assert_max_traces(raw, n=max_traces)
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

    def frames(state, positions, lengths, topology=None):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      return model.render(positions, lengths, None, topology=topology)
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
                     jax.device_put(np.stack([s["num_frames"] for s in samples]), rep),
                     # mixed-format runs: each clip drawn with its own topology's layout
                     jax.device_put(np.stack([s["topology"] for s in samples]), rep)
                     if "topology" in samples[0] else None)
    render, positions, lengths, topology = self._strip
    return np.asarray(render(state, positions, lengths, topology))

  def predict_fns(self):
    """The evaluators' prediction functions over this run's model and mesh (built once)."""
    if self._predict is None:
      from skel_llm.eval import predict
      self._predict = predict.PredictFns(self.layout.graphdef, self.rng_vars, self.mesh)
    return self._predict

  def answer_tokens(self, count: int = 256) -> int:
    """Longest answer, in tokens with its end token, of the first `count` training samples."""
    n = min(count, len(self.train_data))
    return int(max(self.train_data.sample(g)["loss_mask"].sum() for g in range(n)))

  def evaluators(self):
    """The evaluators of `config.evals` over this run (`skel_llm.eval.registry`)."""
    from skel_llm.eval import registry
    if not hasattr(self, "rng_vars"):
      raise RuntimeError("Run.evaluators() needs the model's rng variables: call init_state() "
                         "or restore_or_init() first")
    ctx = registry.Context(self.config, self.encoder, self.predict_fns(), self.answer_tokens)
    return registry.Evaluators(ctx)

  def restore_or_init(self, ckpt: checkpoint.Checkpointer | None) -> tuple[dict, int]:
    """(state, first step): own checkpoint, else init_from, else fresh.

    A restore or an init_from load fills the abstract, sharded target directly: no fresh
    state is built beside it (only the rng streams, and the variables init_from lacks).
    """
    if ckpt is not None and ckpt.latest_step() is not None:
      self.rng_vars = state_lib.init_rng_vars(self.make_model, self.config.trainable)
      state, position, step = ckpt.restore(self.layout.abstract)
      if position.get("seed") != self.config.data.seed:
        raise ValueError(f"{ckpt.directory}: checkpoint was written with data seed "
                         f"{position.get('seed')}, the config has {self.config.data.seed}")
      log.info("resumed from %s at step %d", ckpt.directory, step)
      return state, int(position["next_step"])
    init_from = self.config.get("init_from", "")
    if init_from:
      return build.load_init_from(self, init_from), 0
    return self.init_state(), 0
