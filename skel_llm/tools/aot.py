r"""Ahead-of-time compilation of the real train step for a TPU slice, from any host (CPU).

    python -m skel_llm.tools.aot --config=configs/distill.py:paper --topology=v5e:2x4
    python -m skel_llm.tools.aot --config=configs/distill.py:paper --topology=v5p:2x2x1 --sweep
    python -m skel_llm.tools.aot --config=configs/distill.py:paper --function=generate,score

needs `libtpu` (requirements-tpu-aot.txt): `jax.experimental.topologies` then describes the
chips of a real slice without any being attached, and XLA's TPU compiler partitions and
compiles the step for them. Nothing is allocated: the train state, the batch and the rng are
`ShapeDtypeStruct`s carrying their `NamedSharding`s, built by the trainer's own code paths
(`state.build_layout`, `step.make_train_step`, the activation rules of `sharding`), and the
step is jitted exactly as `trainer.Run.step_fn` jits it (explicit shardings, donated state).

Per chip it prints the bytes of the parameters (trained + frozen), the optimizer state, the
batch and XLA's temporaries, their total against the chip's HBM, the step's FLOPs and XLA's
roofline estimate of its time (`cost_analysis()['optimal_seconds']`), hence an upper bound on
samples/s and the model-FLOPs utilisation that bound implies. XLA counts a `while_loop` body
once, so under `scan_layers` its FLOPs (and HBM bytes) hold one layer per stack: the train
step's rows also carry the model-FLOPs count of `tools.flops`, and the bounds use the larger
of the two FLOP counts (the "FLOPs used" column says which); the bytes are not corrected.
`--sweep` compiles every (data, fsdp, tensor) mesh that divides the slice (and the batch)
with each `--remat` policy and prints one table sorted by estimated step time, marking the
rows that do not fit
(XLA:TPU refuses a program whose temporaries exceed HBM: such a point is a row with the
temporaries XLA asked for). `--function=generate,score` compiles the recognition evaluators'
programs instead of (or besides, with `train`) the train step (`compile_eval`).

Glossary: HBM high-bandwidth memory of one chip; MFU model FLOPs (without recomputation) per
second over the chip's peak; remat recomputation of activations in the backward pass.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import re
import sys
import time
from typing import Any, Sequence

# With libtpu installed every jax process on the host (this one's CPU backend, other jobs')
# opens libtpu's single-process lockfile; compiling for a described topology needs no
# exclusive chip access, so share it instead of failing with "libtpu lockfile".
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm import fs

# Per-chip HBM (bytes), peak dense bf16 FLOP/s and HBM bandwidth (bytes/s) of each TPU
# generation, by `device_kind`, from the Cloud TPU system-architecture pages
# (cloud.google.com/tpu/docs/v4, v5e, v5p, v6e).
_V4 = dict(name="v4", hbm=32 * 2**30, peak_flops=275e12, hbm_bw=1228e9)
_V5E = dict(name="v5e", hbm=16 * 2**30, peak_flops=197e12, hbm_bw=819e9)
_V5P = dict(name="v5p", hbm=95 * 2**30, peak_flops=459e12, hbm_bw=2765e9)
_V6E = dict(name="v6e", hbm=32 * 2**30, peak_flops=918e12, hbm_bw=1640e9)
CHIPS = {"TPU v4": _V4, "TPU v5 lite": _V5E, "TPU v5e": _V5E, "TPU v5": _V5P, "TPU v5p": _V5P,
         "TPU v6 lite": _V6E, "TPU v6e": _V6E}
# The 8-chip slices of the README table (libtpu's topology names).
# v4:2x2x1 is described as 8 devices, the two TensorCores of each of its 4 chips.
SLICES = {"v5e-8": "v5e:2x4", "v5p-8": "v5p:2x2x1", "v4-8": "v4:2x2x1", "v6e-8": "v6e:2x4",
          "v5e-32": "v5e:4x8", "v5p-32": "v5p:2x2x4"}
REMAT_POLICIES = ("none", "full", "dots")


def topology_devices(topology: str) -> list:
  """The devices of a TPU slice by libtpu topology name ('v5e:2x4') or alias ('v5e-8')."""
  from jax.experimental import topologies
  name = SLICES.get(topology, topology)
  try:
    desc = topologies.get_topology_desc(platform="tpu", topology_name=name)
  except Exception as e:  # libtpu raises RuntimeError / XlaRuntimeError with its own text
    raise ValueError(f"--topology {topology!r}: libtpu cannot describe it ({e}); use a name "
                     f"like v5e:2x4, v5p:2x2x1, v4:2x2x1, v6e:2x4 or an alias "
                     f"{sorted(SLICES)}") from e
  return list(desc.devices)


def cores_per_device_chip(devices: Sequence[Any]) -> int:
  """TensorCores of one chip that are separate devices (2 on v4 slices libtpu describes
  without megacore, 1 otherwise)."""
  return len({getattr(d, "core_on_chip", 0) for d in devices})


def chip(devices: Sequence[Any]) -> dict:
  """HBM, peak FLOP/s and bandwidth of one *device* (a chip, or one core of a split chip)."""
  kind = devices[0].device_kind
  if kind not in CHIPS:
    raise ValueError(f"device kind {kind!r} has no HBM / peak FLOPs entry; known: "
                     f"{sorted(CHIPS)}")
  spec = dict(CHIPS[kind])
  cores = cores_per_device_chip(devices)
  if cores > 1:
    spec.update(name=f"{spec['name']} core", hbm=spec["hbm"] // cores,
                peak_flops=spec["peak_flops"] / cores, hbm_bw=spec["hbm_bw"] / cores)
  return spec


class PresetVocabulary:
  """What `build.mllm_config` reads from a tokenizer, for a published preset without its files.

  The shapes of the step depend only on the vocabulary size and the `<IMG_CONTEXT>` id,
  which the preset's `InternVLConfig` holds (InternVL3: 151,674 and 151,667).
  """

  def __init__(self, vocab_size: int, image_token_id: int):
    self.vocab_size = int(vocab_size)
    self.image_token_id = int(image_token_id)

  def token_id(self, token: str) -> int:
    from skel_llm.text import chat
    if token != chat.IMG_CONTEXT:
      raise KeyError(f"PresetVocabulary knows only {chat.IMG_CONTEXT}, not {token!r}")
    return self.image_token_id


def vocabulary(config):
  """The real tokenizer where its files are here, else the preset's vocabulary facts."""
  from skel_llm import models
  from skel_llm.train import build
  tok = config.text.tokenizer
  if tok == "tiny" or os.path.isdir(tok):
    return build.tokenizer(config)
  preset = getattr(models, config.model.preset)()
  return PresetVocabulary(preset.text.vocab_size, preset.image_token_id)


def make_mesh(devices: Sequence[Any], shape: tuple[int, int, int]) -> jax.sharding.Mesh:
  """A (data, fsdp, tensor) mesh over the slice's devices, laid out by the chips' torus."""
  from jax.experimental import mesh_utils

  from skel_llm.train import sharding as shd
  if math.prod(shape) != len(devices):
    raise ValueError(f"--mesh {shape} has {math.prod(shape)} devices but the slice has "
                     f"{len(devices)}")
  if cores_per_device_chip(devices) > 1:
    # mesh_utils lays out one device per chip only; cores of a chip stay neighbours here.
    order = sorted(devices, key=lambda d: (tuple(d.coords)[::-1], d.core_on_chip))
    grid = np.asarray(order).reshape(shape)
  else:
    grid = mesh_utils.create_device_mesh(shape, devices=devices,
                                         allow_split_physical_axes=True)
  return jax.sharding.Mesh(grid, shd.MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3)


def abstract_batch(config, mesh) -> dict:
  """ShapeDtypeStructs of one global training batch (`skel_llm.data.pipeline` layout)."""
  from skel_llm.skeleton import topology
  from skel_llm.train import sharding as shd
  b, d = config.batch_size, config.data
  joints = topology.get(d.topology).num_joints
  shapes = dict(positions=((b, d.max_frames, d.max_persons, joints, 3), jnp.float32),
                num_frames=((b,), jnp.int32), input_ids=((b, d.max_len), jnp.int32),
                input_mask=((b, d.max_len), jnp.int32), loss_mask=((b, d.max_len), jnp.float32),
                label=((b,), jnp.int32))
  return {k: jax.ShapeDtypeStruct(s, t, sharding=shd.batch_sharding(mesh, len(s)))
          for k, (s, t) in shapes.items()}


@dataclasses.dataclass
class Report:
  """What one compilation says about one (config, slice, mesh, remat, function) point, per chip."""

  topology: str
  chip: str
  mesh: tuple[int, int, int]
  remat: str
  batch: int
  trained_params: int
  frozen_params: int
  param_bytes: int  # trained (master dtype) + frozen, this chip's shards
  opt_bytes: int
  batch_bytes: int
  temp_bytes: int
  argument_bytes: int
  output_bytes: int
  alias_bytes: int
  hbm_bytes: int
  # XLA's counts for one chip's partitioned program: FLOPs, and HBM bytes read and written.
  # Both hold one layer per scanned stack under `scan_layers` (a while_loop body is counted
  # once); the bytes are not corrected for it (`model_flops` corrects the FLOPs).
  flops: float
  bytes_accessed: float
  optimal_seconds: float  # XLA's own estimate of the step time (<= 0: it gave none)
  peak_flops: float
  hbm_bandwidth: float
  num_chips: int
  compile_s: float
  # XLA:TPU refuses to compile a program whose temporaries exceed HBM: its message, and
  # temp_bytes read from it (arguments / outputs / FLOPs are then unknown, 0).
  refused: str = ""
  # "train" (the train step), "generate" / "score" (the evaluators' programs, FUNCTIONS).
  function: str = "train"
  # Bytes held on the chip while the program runs without being one of its arguments: an
  # in-training evaluation leaves the optimizer state resident (it is not an input of
  # generate / score).
  resident_bytes: int = 0
  # The model-FLOPs count of the train step per chip (`tools.flops`; 0: none, the eval
  # programs), with and without remat recomputation. XLA counts a while_loop body once, so
  # under `scan_layers` its `flops` hold one layer per stack and this count is the larger.
  model_flops: float = 0.0
  model_flops_useful: float = 0.0

  @property
  def counted_flops(self) -> float:
    """max(XLA's FLOPs, the model count): what the step-time bound, samples/s and MFU use."""
    return max(self.flops, self.model_flops)

  @property
  def flops_source(self) -> str:
    """Which count `counted_flops` is: "model" or "XLA"."""
    return "model" if self.model_flops > self.flops else "XLA"

  @property
  def total_bytes(self) -> int:
    """Live at the peak: arguments + outputs not aliased to (donated) arguments + temporaries
    + what stays resident outside the program."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes
            + self.resident_bytes)

  @property
  def fits(self) -> bool:
    return not self.refused and self.total_bytes <= self.hbm_bytes

  @property
  def step_seconds(self) -> float:
    """A lower bound: the FLOPs at the chip's peak, the HBM traffic at its bandwidth (a
    roofline without overlap of the two counted), and XLA's estimate where it gave one."""
    return max(self.optimal_seconds, self.counted_flops / self.peak_flops,
               self.bytes_accessed / self.hbm_bandwidth)

  @property
  def samples_per_second(self) -> float:
    return self.batch / self.step_seconds if self.step_seconds > 0 else 0.0

  def mfu(self, model_flops: float | None = None) -> float:
    """(useful FLOPs per chip) / (step_seconds x peak). Useful: max(`model_flops`, XLA's count
    of the same point without remat when the caller has one, and the model count without
    remat); without either, XLA's count of this program."""
    f = max(model_flops or 0.0, self.model_flops_useful)
    if f <= 0:
      f = self.flops
    return f / (self.step_seconds * self.peak_flops) if self.step_seconds > 0 else 0.0

  def row(self) -> dict:
    d = dataclasses.asdict(self)
    d.update(total_bytes=self.total_bytes, fits=self.fits, step_seconds=self.step_seconds,
             counted_flops=self.counted_flops, flops_source=self.flops_source,
             samples_per_second=self.samples_per_second, mfu=self.mfu())
    return d


def _shard_bytes(tree) -> int:
  """Bytes of one device's shards of a tree of sharded ShapeDtypeStructs."""
  total = 0
  for x in jax.tree.leaves(tree):
    shape = x.sharding.shard_shape(x.shape) if x.sharding is not None else x.shape
    total += math.prod(shape) * jnp.dtype(x.dtype).itemsize
  return total


def _cost(compiled) -> dict:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return dict(cost or {})


@dataclasses.dataclass
class _Setup:
  """What every compiled function of one (config, slice, mesh, remat) point shares."""

  config: Any
  mesh: jax.sharding.Mesh
  layout: Any  # skel_llm.train.state.StateLayout
  rng_vars: Any
  tok: Any
  spec: dict
  mesh_shape: tuple[int, int, int]
  topology: str


def _setup(config, devices, mesh_shape, remat, topology) -> _Setup:
  s = setup_on_mesh(config, make_mesh(devices, mesh_shape), remat)
  return dataclasses.replace(s, spec=chip(devices), mesh_shape=tuple(mesh_shape),
                             topology=topology)


def setup_on_mesh(config, mesh: jax.sharding.Mesh, remat: str | None = None) -> _Setup:
  """The abstract train state of `config` (with `remat` when given) laid out on `mesh`, which
  may be any backend's (the tests use XLA:CPU); no chip spec, no topology name."""
  from skel_llm.train import build, optimizer, sharding as shd, state as state_lib
  config = copy.deepcopy(config)
  if remat is not None:
    config.model.remat = remat
  dp = shd.data_parallel_size(mesh)
  if config.batch_size % dp:
    raise ValueError(f"config.batch_size {config.batch_size} is not divisible by the "
                     f"data-parallel size {dp} of mesh {tuple(mesh.devices.shape)}")
  rules = shd.check_rules(config.sharding_rules)
  tok = vocabulary(config)
  tx = optimizer.make_optimizer(config.optim, max(config.total_steps, 1))
  make_model = build.model_factory(config, tok)
  layout = state_lib.build_layout(make_model, trainable=config.trainable, tx=tx, mesh=mesh,
                                  rules=rules, master_dtype=config.get("master_dtype", "float32"))
  # The rng streams are tiny key / counter constants of the graph: the step reseeds the ones
  # it uses from its rng argument, so any value of the right type serves here.
  rng_vars = jax.tree.map(_constant_like, layout.rng_vars)
  return _Setup(config, mesh, layout, rng_vars, tok, {}, tuple(mesh.devices.shape), "")


def _compile(s: _Setup, jitted, args: tuple, *, function: str, batch: int, batch_bytes: int,
             resident_bytes: int = 0) -> Report:
  """Lowers and compiles `jitted(*args)` and reads its memory and cost analyses."""
  a, spec = s.layout.abstract, s.spec
  common = dict(
      topology=s.topology, chip=spec["name"], mesh=s.mesh_shape, remat=str(s.config.model.remat),
      batch=batch, trained_params=s.layout.num_params("params"),
      frozen_params=s.layout.num_params("frozen"),
      param_bytes=_shard_bytes(a["params"]) + _shard_bytes(a["frozen"]),
      opt_bytes=_shard_bytes(a["opt_state"]), batch_bytes=batch_bytes, hbm_bytes=spec["hbm"],
      peak_flops=spec["peak_flops"], hbm_bandwidth=spec["hbm_bw"], num_chips=s.mesh.size,
      function=function, resident_bytes=resident_bytes)
  lowered = jitted.lower(*args)
  t = time.perf_counter()
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:
    m = _REFUSED.search(str(e))
    if m is None:
      raise
    return Report(temp_bytes=int(float(m[1]) * _UNITS[m[2]]), argument_bytes=0, output_bytes=0,
                  alias_bytes=0, flops=0.0, bytes_accessed=0.0, optimal_seconds=0.0,
                  compile_s=time.perf_counter() - t, refused=str(e).splitlines()[0][:300],
                  **common)
  compile_s = time.perf_counter() - t
  mem = compiled.memory_analysis()
  cost = _cost(compiled)
  return Report(
      temp_bytes=int(mem.temp_size_in_bytes), argument_bytes=int(mem.argument_size_in_bytes),
      output_bytes=int(mem.output_size_in_bytes), alias_bytes=int(mem.alias_size_in_bytes),
      flops=float(cost.get("flops", 0.0)), bytes_accessed=float(cost.get("bytes accessed", 0.0)),
      optimal_seconds=float(cost.get("optimal_seconds", 0.0)), compile_s=compile_s, **common)


def train_program(s: _Setup) -> tuple[Any, tuple]:
  """(the train step jitted as `trainer.Run.step_fn` jits it, its abstract arguments)."""
  from skel_llm.train import build, optimizer, sharding as shd
  from skel_llm.train import step as step_lib
  config, mesh, layout = s.config, s.mesh, s.layout
  tx = optimizer.make_optimizer(config.optim, max(config.total_steps, 1))
  schedule = optimizer.make_schedule(config.optim, max(config.total_steps, 1))
  raw = step_lib.make_train_step(layout.graphdef, s.rng_vars, tx, build.forward_with_stats,
                                 schedule, dropout=bool(config.model.get("train_dropout", False)),
                                 forward_hidden=build.forward_hidden,
                                 loss_chunk=int(config.get("loss_chunk", 0)))
  raw = shd.with_activation_sharding(raw, shd.check_rules(config.sharding_rules), mesh)
  batch = abstract_batch(config, mesh)
  rep = shd.replicated(mesh)
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=rep)
  jitted = jax.jit(raw, in_shardings=(layout.shardings, {k: v.sharding for k, v in batch.items()},
                                      rep),
                   out_shardings=(layout.shardings, rep), donate_argnums=(0,))
  return jitted, (layout.abstract, batch, key)


def model_count(s: _Setup):
  """`tools.flops.count` of the train step of `s` (its config, remat included)."""
  from skel_llm.tools import flops
  from skel_llm.train import build
  return flops.count(s.config, build.mllm_config(s.config, s.tok))


def compile_step(config, devices: Sequence[Any], mesh_shape: tuple[int, int, int],
                 remat: str | None = None, topology: str = "") -> Report:
  """Builds the train step of `config` for `devices` with abstract arguments and compiles it;
  the report carries the model-FLOPs count (`tools.flops`) beside XLA's."""
  s = _setup(config, devices, mesh_shape, remat, topology)
  jitted, args = train_program(s)
  n = model_count(s)
  r = _compile(s, jitted, args, function="train", batch=s.config.batch_size,
               batch_bytes=_shard_bytes(args[1]))
  return dataclasses.replace(r, model_flops=n.total() / s.mesh.size,
                             model_flops_useful=n.useful / s.mesh.size)


# The evaluators' programs the tool compiles besides the train step (skel_llm.eval.predict).
FUNCTIONS = ("train", "generate", "score")


def eval_shapes(config, function: str, evaluator: str = "") -> dict:
  """Batch, prompt length, reply budget and candidates of a recognition evaluator's program.

  `evaluator` names an entry of `config.evals`; by default the first recognition evaluator
  whose method runs `function` (decode: generate, score: score), else the first recognition
  one. The prompt is padded to `config.data.max_len` as the training prompts are; the
  candidates are the protocol's unseen classes (the configured classes without a protocol).
  A reply budget of 0 (the longest training answer + 8, known only with data) counts as 16.
  """
  from skel_llm.data import protocols
  recognition = [k for k, v in config.evals.items() if v.get("type") == "recognition"]
  method = {"generate": "decode", "score": "score"}[function]
  if evaluator:
    if evaluator not in recognition:
      raise ValueError(f"--evaluator {evaluator!r}: the recognition evaluators of config.evals "
                       f"are {recognition}")
    name = evaluator
  elif recognition:
    name = next((k for k in recognition if config.evals[k].method == method), recognition[0])
  else:
    raise ValueError(f"config.evals has no recognition evaluator ({sorted(config.evals)}); "
                     f"--function={function} compiles one's program")
  ev, d = config.evals[name], config.data
  if d.get("protocol"):
    candidates = len(protocols.get(d.protocol).unseen)
  else:
    candidates = len(d.classes) or 1
  return dict(evaluator=name, batch=int(ev.batch_size), prompt_len=int(d.max_len),
              max_new_tokens=int(ev.max_new_tokens) or 16, candidates=candidates,
              repetition_penalty=float(ev.repetition_penalty))


def compile_eval(config, devices: Sequence[Any], mesh_shape: tuple[int, int, int],
                 function: str, *, remat: str | None = None, topology: str = "",
                 evaluator: str = "", candidate_tokens: int = 16) -> Report:
  """Compiles an evaluator's `generate` or `score` program for `devices`.

  These are the calls `skel_llm.eval.predict.PredictFns.generate / .score` make on the run's
  mesh: the model merged from the train state's params + frozen (sharded like training), the
  rendered frames transposed to the vision tower's layout, then `models.generate` (greedy,
  KV cache, `max_new_tokens`) or `models.score_candidates` (the prefix once, every candidate
  from its cache). The frames float32[B, n, S, S, 3] are an input (the renderer runs in a
  program of its own before); the optimizer state stays resident on the chips meanwhile and
  is counted in `resident_bytes`. Nothing pins activations (the evaluators run outside the
  train step's activation rules, as `PredictFns` does). XLA counts a `while_loop` body once,
  so a generate program's FLOPs and bytes are those of the prefill plus one decode step.
  """
  from flax import nnx

  from skel_llm import models
  from skel_llm.train import sharding as shd
  if function not in ("generate", "score"):
    raise ValueError(f"--function {function!r}: the evaluation programs are generate, score")
  s = _setup(config, devices, mesh_shape, remat, topology)
  config, mesh, layout = s.config, s.mesh, s.layout
  e = eval_shapes(config, function, evaluator)
  b, n, side = e["batch"], config.render.num_frames, config.render.image_size
  dp = shd.data_parallel_size(mesh)
  if b % dp:
    raise ValueError(f"evaluator batch_size {b} is not divisible by the data-parallel size "
                     f"{dp} of mesh {mesh_shape}")

  def arg(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=shd.batch_sharding(mesh, len(shape)))

  state = {k: layout.abstract[k] for k in ("params", "frozen")}
  graphdef, rng_vars = layout.graphdef, s.rng_vars
  frames = arg((b, n, side, side, 3), jnp.float32)
  ids, mask = arg((b, e["prompt_len"]), jnp.int32), arg((b, e["prompt_len"]), jnp.int32)
  stop, pad = 0, 0  # values, not shapes: any ids do

  if function == "generate":
    def fn(state, frames, ids, mask):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      return models.generate(model.mllm, ids, mask, model.pixel_values(frames),
                             max_new_tokens=e["max_new_tokens"], stop_tokens=(stop,),
                             pad_id=pad, repetition_penalty=e["repetition_penalty"])
    args = (state, frames, ids, mask)
  else:
    c, m = e["candidates"], int(candidate_tokens)

    def fn(state, frames, ids, mask, cand_ids, cand_mask):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      return models.score_candidates(model.mllm, ids, mask, model.pixel_values(frames),
                                     cand_ids, cand_mask)
    args = (state, frames, ids, mask, arg((b, c, m), jnp.int32), arg((b, c, m), jnp.int32))
  jitted = jax.jit(fn, in_shardings=jax.tree.map(lambda x: x.sharding, args))
  return _compile(s, jitted, args, function=function, batch=b,
                  batch_bytes=_shard_bytes(args[1:]),
                  resident_bytes=_shard_bytes(layout.abstract["opt_state"]))


# "... the total memory required for HLO temporaries (136.33G) exceeds available HBM (15.75G)"
_REFUSED = re.compile(r"RESOURCE_EXHAUSTED.*?HLO temporaries \(([\d.]+)([KMGT]?)\)", re.S)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _constant_like(x):
  """A concrete array of `x`'s shape and dtype (typed rng keys included)."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    return jax.random.split(jax.random.key(0), math.prod(x.shape) or 1)[:math.prod(x.shape)
                                                                        ].reshape(x.shape)
  return jnp.zeros(x.shape, x.dtype)


def meshes(num_devices: int, batch: int) -> list[tuple[int, int, int]]:
  """Every (data, fsdp, tensor) with data * fsdp * tensor = num_devices and data * fsdp | batch."""
  out = []
  for tensor in _divisors(num_devices):
    for fsdp in _divisors(num_devices // tensor):
      data = num_devices // tensor // fsdp
      if batch % (data * fsdp) == 0:
        out.append((data, fsdp, tensor))
  return out


def _divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0]


def parse_mesh(text: str, num_devices: int) -> tuple[int, int, int]:
  """'data,fsdp,tensor' (one entry may be -1) -> sizes for `num_devices`."""
  from skel_llm.train import sharding as shd
  parts = text.split(",")
  if len(parts) != 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
    raise ValueError(f"--mesh {text!r}: expected three integers data,fsdp,tensor such as 4,2,1 "
                     f"(one may be -1)")
  return shd.mesh_shape(dict(zip(shd.MESH_AXES, (int(p) for p in parts))), num_devices)


def _gib(n: float) -> str:
  return f"{n / 2**30:.2f}"


HEADER = ("function", "mesh (d, f, t)", "remat", "params GiB", "opt GiB", "batch GiB", "temp GiB",
          "total GiB", "HBM GiB", "fits", "XLA TFLOP/step", "model TFLOP/step", "FLOPs used",
          "HBM GB/step (XLA)", "XLA s", "s/step >=",
          "samples/s <=", "MFU <=", "compile s")


def table_row(r: Report, model_flops: float | None = None) -> tuple[str, ...]:
  if r.refused:
    return (r.function, ",".join(map(str, r.mesh)), r.remat, _gib(r.param_bytes), _gib(r.opt_bytes),
            _gib(r.batch_bytes), _gib(r.temp_bytes), f">= {_gib(r.temp_bytes)}",
            _gib(r.hbm_bytes), "**NO** (XLA refused)", "-", _tflop(r.model_flops), "-", "-", "-",
            "-", "-", "-", f"{r.compile_s:.0f}")
  return (r.function, ",".join(map(str, r.mesh)), r.remat, _gib(r.param_bytes), _gib(r.opt_bytes),
          _gib(r.batch_bytes), _gib(r.temp_bytes), _gib(r.total_bytes), _gib(r.hbm_bytes),
          "yes" if r.fits else "**NO**", f"{r.flops / 1e12:.2f}", _tflop(r.model_flops),
          r.flops_source,
          f"{r.bytes_accessed / 1e9:.1f}",
          f"{r.optimal_seconds:.3f}" if r.optimal_seconds > 0 else "-", f"{r.step_seconds:.3f}",
          f"{r.samples_per_second:.2f}", f"{100 * r.mfu(model_flops):.0f} %",
          f"{r.compile_s:.0f}")


def _tflop(flops: float) -> str:
  return f"{flops / 1e12:.2f}" if flops > 0 else "-"


def print_table(reports: Sequence[Report], out=sys.stdout) -> None:
  """Markdown table, fastest first; MFU counts the FLOPs of the same mesh without remat
  (the larger of XLA's count of that point, where compiled, and the model count)."""
  no_remat = {(r.mesh, r.function): r.flops for r in reports if r.remat == "none"}
  print("| " + " | ".join(HEADER) + " |", file=out)
  print("|" + "---|" * len(HEADER), file=out)
  for r in sorted(reports, key=lambda r: (not r.fits, r.step_seconds)):
    print("| " + " | ".join(table_row(r, no_remat.get((r.mesh, r.function)))) + " |", file=out)


def describe(r: Report) -> str:
  return (f"{r.function}: {r.topology} ({r.num_chips} x {r.chip}, {_gib(r.hbm_bytes)} GiB HBM "
          f"each), mesh (data, fsdp, tensor) = {r.mesh}, remat {r.remat}, global batch "
          f"{r.batch}; "
          f"{r.trained_params:,} trained + {r.frozen_params:,} frozen parameters"
          + (f"; FLOPs per chip: XLA {r.flops / 1e12:.2f} T, model count "
             f"{r.model_flops / 1e12:.2f} T ({r.model_flops_useful / 1e12:.2f} T without "
             f"remat), {r.flops_source}'s used" if r.model_flops else ""))


def main(argv):
  from absl import flags
  del argv
  f = flags.FLAGS
  config = f.config
  if config is None:
    raise ValueError("--config is required, e.g. --config=configs/distill.py:paper")
  devices = topology_devices(f.topology)
  remats = [s.strip() for s in f.remat.split(",")] if f.remat else [str(config.model.remat)]
  if f.sweep:
    shapes = [parse_mesh(f.mesh, len(devices))] if f.mesh else meshes(len(devices),
                                                                      config.batch_size)
  else:
    from skel_llm.train import sharding as shd
    shapes = [parse_mesh(f.mesh, len(devices)) if f.mesh else
              shd.mesh_shape(config.mesh, len(devices))]
    remats = remats[:1]
  functions = [x.strip() for x in f.function.split(",") if x.strip()]
  unknown = sorted(set(functions) - set(FUNCTIONS))
  if unknown or not functions:
    raise ValueError(f"--function {f.function!r}: expected a comma-separated subset of "
                     f"{FUNCTIONS}")
  reports = []
  for function, shape, remat in itertools.product(functions, shapes, remats):
    try:
      if function == "train":
        r = compile_step(config, devices, shape, remat, topology=f.topology)
      else:
        r = compile_eval(config, devices, shape, function, remat=remat, topology=f.topology,
                         evaluator=f.evaluator, candidate_tokens=f.candidate_tokens)
    except Exception as e:  # one point failing to compile is a row of the sweep, not the end
      if not f.sweep:
        raise
      print(f"{function} mesh {shape} remat {remat}: did not compile: "
            f"{str(e).splitlines()[0][:300]}", flush=True)
      continue
    reports.append(r)
    print(describe(r), flush=True)
    print_table([r])
  if len(reports) > 1:
    print("\nAll points, fitting first, by estimated step time:")
    print_table(reports)
  print("per chip; FLOPs used = max(XLA's count, the model count of tools.flops), named in "
        "'FLOPs used' (XLA counts a while_loop body once: with scan_layers its FLOPs and HBM "
        "bytes hold one layer per scanned stack; the bytes are not corrected); "
        "s/step >= max(XLA optimal_seconds, FLOPs used / peak, HBM bytes / bandwidth); "
        "MFU <= FLOPs without remat (max of the model count without remat and XLA's count of "
        "the same mesh compiled without remat, XLA's own count where neither exists) / "
        "(s/step x peak); total = arguments + non-donated outputs + "
        "temporaries (+ the optimizer state left resident, for generate / score); generate's "
        "FLOPs and bytes: the prefill + one decode step (XLA counts a while_loop body once).")
  if f.json:
    fs.write_json(f.json, [r.row() for r in reports], indent=1)  # local or gs://


def _define_flags():
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Training configuration (configs/*.py[:preset]).",
                                  lock_config=False)
  flags.DEFINE_string("topology", "v5e:2x4",
                      f"libtpu topology name (v5e:2x4, v5p:2x2x1, ...) or alias {sorted(SLICES)}")
  flags.DEFINE_string("mesh", "", "data,fsdp,tensor (default: config.mesh; with --sweep: all)")
  flags.DEFINE_bool("sweep", False, "compile every mesh dividing the slice x every --remat")
  flags.DEFINE_string("remat", "", f"comma-separated policies {REMAT_POLICIES} "
                      f"(default: config.model.remat)")
  flags.DEFINE_string("json", "", "also write the reports to this JSON file")
  flags.DEFINE_string("function", "train", f"comma-separated programs to compile, of {FUNCTIONS}: "
                      "the train step, the evaluators' greedy generation, candidate scoring")
  flags.DEFINE_string("evaluator", "", "config.evals entry whose shapes generate / score take "
                      "(default: the first recognition evaluator with that method)")
  flags.DEFINE_integer("candidate_tokens", 16, "tokens per scored candidate answer (score)")


if __name__ == "__main__":
  from absl import app
  _define_flags()

  def _run(argv):
    try:
      main(argv)
    except (ValueError, FileNotFoundError, KeyError) as e:
      print(f"[skel_llm.tools.aot] error: {e}", file=sys.stderr, flush=True)
      sys.exit(2)
  app.run(_run)
