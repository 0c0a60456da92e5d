"""Builds the pretrained tiny InternVL of the embedded world, reproducibly, with provenance.

`build(config, out)`: the stage demo's tiny InternVL (`configs/*.py` `demo_pretrained`
presets: same `config.model`, `config.render` frame layout and tokenizer), freshly
initialised from `config.seed`, trained in full (every parameter: vision tower, projector,
LLM) with the next-token loss on the answers of the stick-figure corpus
(`skel_llm.pretrain.corpus`), by the project's own pure train step
(`skel_llm.train.step.make_train_step`) and optimizer. Writes `out/` in the transformers
layout (`models.export_hf`, float32: what `config.init_from=hf:<out>` reads; in files of at
most `SHARD_SIZE` with transformers' index, so no committed file is over 1 MB) and
`out/provenance.json`: the config, the corpus spec (class lists, seed ranges, the excluded
unseen classes), the loss every `log_every` steps, jax/jaxlib/flax/optax/numpy versions, the
machine, the wall time and load, the sha256 of the parameters (`params_digest`) after each of
`config.digest_steps` and at the end, and the sha256 of every file written.

Everything is a function of the config: the same config on the same software reproduces the
parameters bit for bit (tests/pretrain/test_builder.py re-runs the first steps against the
committed record).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import sys
import threading
import time
import queue
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from skel_llm.pretrain import corpus as corpus_lib

SCHEMA = "skel_llm.pretrain/1"
# XLA:CPU flag the build runs under (set before jax starts: the CLI does, the tests run the
# builder in a subprocess that does): Eigen's multi-threaded kernels may split a reduction
# by the number of cores, which would make the digests depend on the machine's core count.
XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"
# The asset's weight files are at most this size (transformers' `max_shard_size`): the files
# are committed, and the layout (not a training choice) is outside the recorded config.
SHARD_SIZE = "1MB"
# The recipe's corpus (README, "A pretrained MLLM for the embedded world", has what was tried):
# every clip drawn plain, and the `choice` question only. Mixed with the caption, reason, part,
# side, up/down or YES/NO tasks (uniformly, with choice weighted 3/7, or after 300 choice-only
# steps) the build's answers stop depending on the pictures (probe picture effect <= 0.3 nats).
PLAIN_FRACTION = 1.0
TASKS = ("choice",)


def check_flags() -> None:
  if XLA_FLAG not in os.environ.get("XLA_FLAGS", ""):
    raise RuntimeError(f"the pretraining build must run with XLA_FLAGS containing {XLA_FLAG} "
                       f"(set before jax is imported; python -m skel_llm.tools.pretrain_demo "
                       f"does it), else its parameters depend on the core count")


def default_config() -> ml_collections.ConfigDict:
  """The committed asset's recipe (`python -m skel_llm.tools.pretrain_demo`)."""
  from skel_llm.train import defaults
  base = defaults.base("")
  c = ml_collections.ConfigDict()
  c.seed = 0  # model initialisation
  c.total_steps = 500
  c.batch_size = 8
  c.log_every = 20
  c.digest_steps = (1, 2, 3, 100)
  c.optim = ml_collections.ConfigDict(dict(base.optim))
  c.optim.lr = 2e-3
  c.model = ml_collections.ConfigDict(dict(base.model))
  c.render = ml_collections.ConfigDict(dict(image_size=base.render.image_size,
                                            num_frames=base.render.num_frames))
  c.text = ml_collections.ConfigDict(dict(base.text))
  c.data = ml_collections.ConfigDict(dict(max_len=400))
  spec = corpus_lib.CorpusSpec()
  c.corpus = ml_collections.ConfigDict(dict(
      classes=spec.classes, seed_base=spec.seed_base, style_seed=spec.style_seed,
      task_seed=spec.task_seed, tasks=TASKS, clip_frames=spec.clip_frames,
      knobs=dict(defaults.DEMO_KNOBS), plain_fraction=PLAIN_FRACTION, task_weights=(),
      first_samples=0, first_tasks=()))
  return c


def _stage_like(config) -> ml_collections.ConfigDict:
  """A stage-shaped config (what `skel_llm.train.build` reads) with this model and text."""
  from skel_llm.train import defaults
  c = defaults.base("")
  c.model = config.model
  c.render.image_size = config.render.image_size
  c.render.num_frames = config.render.num_frames
  c.text = config.text
  c.data.max_len = config.data.max_len
  c.seed = config.seed
  return c


def corpus_spec(config) -> corpus_lib.CorpusSpec:
  k = config.corpus
  return corpus_lib.CorpusSpec(
      classes=tuple(k.classes), seed_base=int(k.seed_base), style_seed=int(k.style_seed),
      task_seed=int(k.task_seed), tasks=tuple(k.tasks), num_frames=int(config.render.num_frames),
      image_size=int(config.render.image_size), clip_frames=int(k.clip_frames),
      knobs={n: tuple(v) if isinstance(v, (list, tuple)) else v for n, v in k.knobs.items()},
      # Records made before the plain clips existed (2026-12-04) have no plain_fraction.
      plain_fraction=float(k.get("plain_fraction", 0.0)),
      task_weights=tuple(float(w) for w in k.get("task_weights", ())),
      first_samples=int(k.get("first_samples", 0)), first_tasks=tuple(k.get("first_tasks", ())))


def params_digest(params: Any) -> str:
  """sha256 over every parameter leaf in path order: path, dtype, shape, then the raw bytes."""
  h = hashlib.sha256()
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  for path, leaf in sorted(flat, key=lambda kv: jax.tree_util.keystr(kv[0])):
    a = np.asarray(jax.device_get(leaf))
    h.update(jax.tree_util.keystr(path).encode())
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def software() -> dict:
  import flax
  import jaxlib
  import optax
  return {"python": sys.version.split()[0], "jax": jax.__version__,
          "jaxlib": jaxlib.__version__, "flax": flax.__version__, "optax": optax.__version__,
          "numpy": np.__version__, "backend": jax.default_backend(),
          "machine": platform.machine(), "processor": _cpu_name(), "cpus": os.cpu_count(),
          "cpu_id": _cpu_id(), "isa": _vector_isa()}


def _cpuinfo_field(name: str) -> str | None:
  """The first `name : value` of /proc/cpuinfo (None off Linux)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
          return value.strip()
  except OSError:
    pass
  return None


def _cpu_id() -> str | None:
  """'<vendor> family <f> model <m>': a virtual machine's model name can hide the CPU
  generation ("AMD EPYC" on both an AVX2-only EPYC and a Zen 4 one with AVX-512)."""
  fields = [_cpuinfo_field(k) for k in ("vendor_id", "cpu family", "model")]
  return None if None in fields else f"{fields[0]} family {fields[1]} model {fields[2]}"


# The vector extensions LLVM and XLA:CPU choose kernels by.
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
              "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
              "amx_bf16", "amx_int8", "asimd", "sve")


def _vector_isa() -> str | None:
  flags = _cpuinfo_field("flags") or _cpuinfo_field("Features")
  return None if flags is None else " ".join(f for f in _ISA_FLAGS if f in flags.split())


def _cpu_name() -> str:
  return _cpuinfo_field("model name") or platform.processor()


class Trainer:
  """The model, corpus and jitted step of one config (shared by `build` and the tests)."""

  def __init__(self, config):
    from skel_llm import models
    from skel_llm.train import build as build_lib, optimizer, step as step_lib
    self.config = config
    stage = _stage_like(config)
    self.tokenizer = build_lib.tokenizer(stage)
    self.encoder = build_lib.encoder(stage, self.tokenizer)
    self.corpus = corpus_lib.Corpus(corpus_spec(config), self.encoder)
    mcfg = build_lib.mllm_config(stage, self.tokenizer)
    if mcfg.lora is not None:
      raise ValueError("pretraining trains the full model: set config.model.lora_rank=0")
    self.mllm_config = mcfg

    def make():
      return models.InternVL(mcfg, rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))

    self.make = make
    model = make()
    self.graphdef, params, rng_vars, rest = nnx.split(model, nnx.Param, nnx.RngState, ...)
    self.rng_vars = nnx.to_pure_dict(rng_vars)
    self.schedule = optimizer.make_schedule(config.optim, config.total_steps)
    self.tx = optimizer.make_optimizer(config.optim, config.total_steps)
    params = nnx.to_pure_dict(params)
    self.state = {"step": jnp.zeros((), jnp.int32), "params": params,
                  "frozen": nnx.to_pure_dict(rest), "opt_state": self.tx.init(params)}

    def forward(m, batch, rng, training):
      del rng, training  # no renderer: no statistics beside the logits
      return m(batch["input_ids"], batch["input_mask"], batch["pixel_values"]), {}

    self.step_fn = jax.jit(step_lib.make_train_step(self.graphdef, self.rng_vars, self.tx,
                                                    forward, self.schedule),
                           donate_argnums=(0,))
    self.rng = jax.random.key(config.seed)

  def batches(self, start: int, stop: int):
    """Batches of steps [start, stop), made one ahead on a thread (the step runs meanwhile)."""
    q: queue.Queue = queue.Queue(maxsize=2)

    def produce():
      for s in range(start, stop):
        q.put(self.corpus.batch(s, self.config.batch_size))
    threading.Thread(target=produce, daemon=True).start()
    for _ in range(start, stop):
      yield q.get()

  def run(self, num_steps: int, on_step=None) -> None:
    """Trains `num_steps` steps from the current state; `on_step(step, metrics)` after each."""
    start = int(self.state["step"])
    for batch in self.batches(start, start + num_steps):
      self.state, metrics = self.step_fn(self.state, batch, self.rng)
      if on_step is not None:
        on_step(int(self.state["step"]), metrics)

  def model(self):
    return nnx.merge(self.graphdef, self.state["params"], self.state["frozen"], self.rng_vars)


def build(config, out: str | os.PathLike, *, log=print) -> dict:
  """Trains `config` and writes the asset folder `out`; returns the provenance record."""
  from skel_llm import models
  from skel_llm.models import pretrained
  check_flags()
  out = pathlib.Path(out)
  t0 = time.time()
  load0 = os.getloadavg()
  trainer = Trainer(config)
  total = int(config.total_steps)
  digests = {"0": params_digest(trainer.state["params"])}
  losses: dict[str, float] = {}
  want = {int(s) for s in config.digest_steps if 0 < int(s) <= total} | {total}
  clock = {"t": time.time()}

  def on_step(step: int, metrics: dict) -> None:
    if step in want:
      digests[str(step)] = params_digest(trainer.state["params"])
    if step == 1 or step % config.log_every == 0 or step == total:
      loss = float(metrics["loss"])
      if not np.isfinite(loss):
        raise FloatingPointError(f"pretraining loss is {loss} at step {step}")
      losses[str(step)] = loss
      now = time.time()
      log(f"[pretrain] step {step}/{total} loss {loss:.4f} acc "
          f"{float(metrics['accuracy']):.3f} ({now - clock['t']:.1f} s)")
      clock["t"] = now

  trainer.run(total, on_step)
  out.mkdir(parents=True, exist_ok=True)
  for old in [*out.glob("*.safetensors"), *out.glob("*.safetensors.index.json")]:
    old.unlink()
  models.export_hf(trainer.model(), out, tokenizer=None, dtype="float32",
                   max_shard_size=SHARD_SIZE)
  files = {p.name: pretrained.file_sha256(p) for p in sorted(out.iterdir())
           if p.is_file() and p.name != pretrained.PROVENANCE}
  spec = corpus_spec(config)
  record = {
      "schema": SCHEMA,
      "command": "python -m skel_llm.tools.pretrain_demo --out=" + str(out),
      "config": json.loads(config.to_json()),
      "corpus": {"classes": list(spec.classes),
                 "excluded_unseen_classes": list(corpus_lib.EXCLUDED),
                 "clip_seeds": [spec.seed_base, spec.seed_base + total * config.batch_size],
                 "samples": total * config.batch_size,
                 "class_of_sample": "classes[g % len(classes)], seed seed_base + g",
                 "style_seed": spec.style_seed, "task_seed": spec.task_seed,
                 "tasks": list(spec.tasks), "task_weights": list(spec.task_weights),
                 "plain_fraction": spec.plain_fraction,
                 "first_samples": spec.first_samples, "first_tasks": list(spec.first_tasks)},
      "num_params": int(sum(np.size(x) for x in jax.tree.leaves(trainer.state["params"]))),
      "steps": total,
      "loss": losses,
      "params_digest": digests,
      "software": software(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "wall_s": round(time.time() - t0, 1),
      "load_avg_1min": {"start": round(load0[0], 2), "end": round(os.getloadavg()[0], 2)},
      "files": files,
  }
  with open(out / pretrained.PROVENANCE, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)
    f.write("\n")
  return record


def config_from_record(record: dict) -> ml_collections.ConfigDict:
  """The builder config a provenance record was made with."""
  if record.get("schema") != SCHEMA:
    raise ValueError(f"provenance schema {record.get('schema')!r}: expected {SCHEMA!r}")
  return ml_collections.ConfigDict(record["config"])


# The fields of `software()` that a bitwise replay depends on: XLA:CPU generates code for the
# host's instruction set (AVX-512 vectors split a reduction otherwise than AVX2 ones), so the
# same build gives other low bits on another CPU model (measured: the asset built on an
# "Intel(R) Xeon(R) Processor", re-run on an "AMD EPYC" with AVX2 only, equals the record at
# steps 0 and 1 and differs from step 2 on; re-run on an "AMD EPYC" of family 25 model 17
# with AVX-512 it differs from both, also with --xla_cpu_max_isa=AVX2, AVX or AVX512).
REPLAY_KEYS = ("machine", "processor", "cpus", "jax", "jaxlib", "cpu_id", "isa")
# Records written before `software()` had "cpu_id" and "isa" (2026-12-03) match on these.
LEGACY_REPLAY_KEYS = ("machine", "processor", "cpus", "jax", "jaxlib")
REPLAY_STEPS = 3  # the first steps a replay re-runs (tools.pretrain_demo --record_replay, tests)


def replay_match(record: dict, machine: dict, exact: bool = False) -> tuple[dict, dict] | None:
  """(software, {step: params_digest}) of the recorded run that a replay on `machine` (a
  `software()` dict) must equal: the build itself when it ran on such a machine, else a
  replay recorded on one (`record['replays']`, `python -m skel_llm.tools.pretrain_demo
  --record_replay`). A run recorded with every REPLAY_KEYS field matches on all of them;
  unless `exact`, one recorded before "cpu_id" and "isa" existed matches on
  LEGACY_REPLAY_KEYS (its CPU generation is unknown) when no exact one does. None when
  nothing matches."""
  runs = [(record["software"], record["params_digest"])]
  runs += [(e["software"], e["params_digest"]) for e in record.get("replays", [])]
  same = lambda sw, keys: all(sw.get(k) == machine.get(k) for k in keys)  # noqa: E731
  for sw, digests in runs:
    if same(sw, REPLAY_KEYS):
      return sw, dict(digests)
  if not exact:
    for sw, digests in runs:
      if "cpu_id" not in sw and same(sw, LEGACY_REPLAY_KEYS):
        return sw, dict(digests)
  return None


def replay_digests_for(record: dict, machine: dict) -> dict[str, str] | None:
  """The digests of `replay_match(record, machine)`; None when nothing matches."""
  match = replay_match(record, machine)
  return None if match is None else match[1]


def replay(record: dict, num_steps: int) -> dict[str, str]:
  """{step: params_digest} of the first `num_steps` steps re-run from `record`'s config
  (steps 0 .. num_steps), to compare with `record['params_digest']`."""
  check_flags()
  trainer = Trainer(config_from_record(record))
  out = {"0": params_digest(trainer.state["params"])}

  def on_step(step, metrics):
    del metrics
    out[str(step)] = params_digest(trainer.state["params"])
  trainer.run(int(num_steps), on_step)
  return out
