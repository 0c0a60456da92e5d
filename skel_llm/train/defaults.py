"""The shared base of every `configs/*.py`: the embedded demo, and the paper / smoke presets.

Stage files only change what differs between stages: the task, which
parameters train (`trainable`, regex on parameter paths such as
`renderer/features`, `mllm/multi_modal_projector/linear_1/kernel`,
`mllm/language_model/layers/3/self_attn/q_proj/lora_a`), LoRA, epochs and
`init_from`.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from skel_llm.eval import options

# Logical axis -> mesh axes (first match wins; see skel_llm.train.sharding). Weights are
# FSDP-sharded on their model dimension and tensor-parallel on heads / MLP / vocabulary;
# activations are split over the batch and tensor-parallel like their weights.
SHARDING_RULES = (
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("vision_embed", "fsdp"),
    ("vision_heads", "tensor"),
    ("vision_mlp", "tensor"),
    ("vision_patch", None),
    ("vision_pos", None),
    ("projector_in", "fsdp"),
    ("projector_hidden", "tensor"),
    ("lora_rank", None),
    # Activations (skel_llm.models.partitioning): the batch is split like the input batch;
    # the residual stream stays whole on every device of a (data, fsdp) group, so FSDP
    # gathers weights rather than moving activations; heads / MLP units / vocabulary follow
    # their tensor-parallel weights.
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_heads", "tensor"),
    ("activation_kv_heads", "tensor"),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
)

# The embedded demo's classes and view/placement ranges. A from-scratch vision tower on 2 CPU
# cores learns to tell actions apart within minutes only when the camera and placement vary
# little (measured: 4 classes, vision-only probe, 100 steps: ~50 % held-out with the
# generator's default ranges, 89 % with these); real runs use the generator's defaults.
DEMO_CLASSES = ("squat", "jump", "raise left arm", "raise right arm", "bow", "kick right leg")
DEMO_KNOBS = dict(view_yaw_deg=(-10.0, 10.0), camera_pitch_deg=(0.0, 0.0), lateral=(0.0, 0.0),
                  distance=(3.0, 3.0), camera_height=(0.9, 0.9))

# The `demo_pretrained` presets (issue 15): the stages start from the committed pretrained tiny
# InternVL (`skel_llm.models.pretrained`, built by `python -m skel_llm.tools.pretrain_demo`)
# with the paper's freezing rules, train on seen classes and are evaluated zero-shot on
# unseen ones. Unseen = the `synthetic_compositional` protocol's unseen verb/part combinations
# (`synthetic.compositional_split(0)`), which the pretraining corpus also leaves out
# (`skel_llm.pretrain.corpus.EXCLUDED`); seen = the grid classes that pair every verb with the
# other part, plus kicks and waves (tests/train/test_defaults.py checks both lists).
DEMO_PRETRAINED_SEEN = ("raise left arm", "raise right arm", "swing left leg", "swing right leg",
                        "stretch left leg", "stretch right leg", "bend left arm",
                        "bend right arm", "kick left leg", "kick right leg", "wave left hand",
                        "wave right hand")
DEMO_PRETRAINED_UNSEEN = ("raise left leg", "raise right leg", "swing left arm",
                          "swing right arm", "stretch left arm", "stretch right arm",
                          "bend left leg", "bend right leg")
DEMO_PRETRAINED_LORA_RANK = 8

RENDERER = r"renderer/.*"
PROJECTOR = r"mllm/multi_modal_projector/.*"
LORA = r"mllm/.*/lora_[ab]"
EVERYTHING = r".*"


def load_config(path: str | os.PathLike, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of a config file: what `--config=<path>:<arg>` gives `skel_llm.main`.

  For tests, benchmarks and notebooks, e.g. `load_config("configs/distill.py", "smoke")`.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path} does not exist")
  name = "skel_llm_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def base(arg: str | None) -> ml_collections.ConfigDict:
  """Demo defaults (tiny model from scratch, synthetic data, CPU), then the preset in `arg`."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.total_steps = 400
  c.epochs = 0.0  # > 0: total_steps = ceil(epochs * training clips / batch_size)
  c.batch_size = 8
  c.log_every = 10
  c.init_from = ""  # previous stage's workdir, or "hf:<folder>" with transformers weights
  c.master_dtype = "float32"  # dtype of the trained parameters and their optimizer state
  # > 0: the loss takes the logits this many tokens at a time (step.chunked_answer_loss), so
  # float32[B, L, V] logits never exist whole (2.2 GB per clip at L 3584, V 151,674).
  c.loss_chunk = 0

  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
  c.sharding_rules = SHARDING_RULES
  # The tiny demo model has no pretrained weights, so everything trains; the paper presets
  # freeze the vision tower and the base LLM (stage files set `trainable`).
  c.trainable = (EVERYTHING,)

  c.optim = ml_collections.ConfigDict(dict(
      lr=3e-3, schedule="warmup_cosine", warmup_fraction=0.05, end_fraction=0.05,
      weight_decay=0.05, b1=0.9, b2=0.999, eps=1e-8, grad_clip_norm=1.0))

  c.model = ml_collections.ConfigDict(dict(
      preset="tiny", dtype="float32", param_dtype="float32",
      # Per-layer rematerialisation ("none", "full", "dots": models.layers.remat_policy);
      # vision_remat "" = the same as remat.
      remat="none", vision_remat="",
      scan_layers=False,  # stacked layers under jax.lax.scan (models.InternVLConfig)
      patch_size=8, downsample_ratio=0.5,
      vision_width=64, vision_layers=2, vision_heads=4, vision_mlp=128,
      text_width=128, text_layers=2, text_heads=4, text_kv_heads=2, text_mlp=256,
      lora_rank=0, lora_alpha=64.0, lora_dropout=0.0, train_dropout=False,
      # > 0: foreground sparsification, this many visual tokens per frame (the most intense
      # cells; models.InternVLConfig.visual_tokens_per_frame); 0 keeps every cell.
      visual_tokens_per_frame=0))

  c.render = ml_collections.ConfigDict(dict(
      image_size=32, num_frames=6, fov_deg=35.0, dense=False, velocity_stride=4,
      # Tile side of the tiled rasteriser (render.raster.composite_tiled; exact up to its eps
      # for any tile). 16: the tile of the 448 px parity and speed measurements; on 32 px
      # frames a tile of 8 evaluates a quarter of the pixels per (tile, Gaussian) pair and
      # halves the demo's step on CPU (README, "Training"; benchmarks/train_step.py --tiles).
      tile=16,
      # (tile, Gaussian) pairs one frame may hold in the tiled rasteriser; 0: its default for
      # the frame's Gaussians (raster.default_capacity). Pairs beyond it are dropped and
      # counted (`render_overflow` in the step metrics and result.json), never silently.
      capacity=0,
      topology="ntu25", enable_nfm=True, init="",
      # Ablations (benchmarks/ablations.py): what draws (draction, or the fixed velocity /
      # stick renderers), two persons joint or overlaid, the blend rule (topology, distance,
      # uniform, learnable: skel_llm.render.layout.BLEND_RULES).
      kind="draction", persons="joint", blend="topology"))

  c.data = ml_collections.ConfigDict(dict(
      source="synthetic", task="mqa", eval_task="mqa", seed=0,
      num_train_clips=4096, num_eval_clips=48, eval_seed_offset=10_000_000, clip_frames=48,
      # Camera placement of the clips (skel_llm.render.camera.place): 'auto' by the topology's
      # units / up axis / 2D flag, or 'kinect', 'humanml3d', 'normalise', 'none'.
      topology="ntu25", placement="auto",
      # Mixed-format training (render.mixed): the training split's topologies (one of them
      # data.topology = render.topology, where the renderer's parameters live) and their
      # mixture weights (empty: equal; TFDS: the builds' sizes); () trains on data.topology
      # alone. With source 'tfds', tfds_names holds one build per topology (same order).
      topologies=(), topology_weights=(), tfds_names=(),
      classes=DEMO_CLASSES, synthetic_knobs=dict(DEMO_KNOBS),
      # Classes of the evaluation split (the synthetic source): () = `classes` (held-out
      # seeds of the training classes); a list = zero-shot, candidates among these only.
      eval_classes=(),
      max_frames=48, max_persons=2, max_len=400, prefetch=2,
      confusable_file="", rationale_file="", reason_with_candidates=False,
      # tfds sources (data_prep/): builder name, folder, split names, zero-shot protocol
      tfds_name="", data_dir="", train_split="train", eval_split="test", protocol="",
      # Evaluators only: a cross-format protocol (skel_llm.data.crossformat) for their split.
      crossformat=""))

  c.text = ml_collections.ConfigDict(dict(tokenizer="tiny", template="internvl2_5",
                                          system="short"))
  c.checkpoint = ml_collections.ConfigDict(dict(every_steps=100, keep=2, async_save=True))
  # Evaluators (skel_llm.eval.registry), each every `every_steps` and at the end; num_clips 0
  # turns one off. Held-out clips: other generator seeds than training. max_new_tokens 0
  # decodes up to the longest training answer + 8 tokens (a reasoning reply is not cut
  # before its Label line).
  c.evals = ml_collections.ConfigDict(dict(
      heldout=options.evaluator("recognition", method="decode", every_steps=100),
      heldout_score=options.evaluator("recognition", method="score", every_steps=100),
      robustness=options.evaluator("robustness", of="heldout", num_clips=24),
  ))
  # merged_hf files hold at most max_shard_size each (transformers' sharded layout + index).
  c.export = ml_collections.ConfigDict(dict(renderer=True, merged_hf=False,
                                            max_shard_size="5GB"))

  for preset in (arg or "").split(","):
    if preset in ("", "demo", "multitask"):  # multitask: applied by the stage file (multitask())
      continue
    if preset == "smoke":
      _smoke(c)
    elif preset in PAPER_SIZES:
      _paper(c, PAPER_SIZES[preset])
    elif preset == "crossformat":
      _crossformat(c)
    elif preset == "mixed":
      _mixed(c)
    elif preset == "demo_pretrained":
      _demo_pretrained(c)
    else:
      raise ValueError(f"unknown config preset {preset!r}; known: demo (default), "
                       f"{', '.join(PAPER_SIZES)}, smoke, multitask, crossformat, mixed, "
                       f"demo_pretrained")
  return c


# The multi-task mixture of one checkpoint (issue 14, the paper's Table 4): recognition by
# reasoning, captioning and Skeleton-QA, each sample's task drawn with these weights.
MULTITASK = "reason:0.5,caption:0.25,qa:0.25"


def multitask(c: ml_collections.ConfigDict) -> None:
  """The mixture `MULTITASK` and the evaluators of all three tasks on one checkpoint."""
  c.data.task = MULTITASK
  # One evaluation of each task at the end (the likelihood ranking and the robustness sweep of
  # the recognition demo are left to configs/distill.py without the mixture).
  c.evals = ml_collections.ConfigDict(dict(
      heldout=options.evaluator("recognition", method="decode", every_steps=0,
                                num_clips=c.evals.heldout.num_clips,
                                batch_size=c.evals.heldout.batch_size)))
  c.evals.captions = options.evaluator("captioning", num_clips=48, every_steps=0)
  c.evals.qa = options.evaluator("qa", num_clips=48, every_steps=0)


# Other formats the synthetic generator writes (skel_llm.synthetic.formats) that the
# `crossformat` preset evaluates a run on, with its renderer transferred.
CROSS_FORMATS = ("kinect20", "smpl22", "coco17")


def _crossformat(c: ml_collections.ConfigDict) -> None:
  """Adds `heldout_<fmt>` / `heldout_score_<fmt>`: the held-out evaluators on the same clips
  written as each of `CROSS_FORMATS` (placed by `config.data.placement`), drawn by the run's
  renderer transferred to that topology; robustness is left out."""
  evals = {k: v for k, v in c.evals.items() if k != "robustness"}
  for fmt in CROSS_FORMATS:
    for name in ("heldout", "heldout_score"):
      ev = dict(c.evals[name])
      ev["data"] = dict(ev["data"], topology=fmt)
      evals[f"{name}_{fmt}"] = ev
  c.evals = ml_collections.ConfigDict(evals)


# The mixed-format preset's training topologies (issue 14, the rebuttal's joint-training row).
MIXED_FORMATS = ("ntu25", "smpl22")


def _mixed(c: ml_collections.ConfigDict) -> None:
  """Trains on NTU-25 and SMPL-22 clips in one run (half each; `render.mixed`: every row drawn
  with its own topology's layout from the one ntu25 renderer) and evaluates the held-out clips
  in each training topology (`heldout[_score]` ntu25, `heldout[_score]_smpl22`: the renderer
  transferred as in cross-format evaluation, which is the layout the run trained them with)."""
  c.data.topologies = MIXED_FORMATS
  c.data.topology_weights = (0.5, 0.5)
  evals = {k: v for k, v in c.evals.items() if k != "robustness"}
  for fmt in MIXED_FORMATS:
    if fmt == c.data.topology:
      continue
    for name in ("heldout", "heldout_score"):
      if name in c.evals:
        ev = dict(c.evals[name])
        ev["data"] = dict(ev["data"], topology=fmt)
        evals[f"{name}_{fmt}"] = ev
  c.evals = ml_collections.ConfigDict(evals)


def _demo_pretrained(c: ml_collections.ConfigDict) -> None:
  """The demo from the pretrained tiny InternVL: vision tower and LLM frozen (the stage files
  set which of renderer / projector / LoRA train), seen classes for training, unseen ones for
  the evaluators (zero-shot, chance 1 / 8) but the `*_seen` ones, the validation split of
  held-out seeds of the seen classes (chance 1 / 12)."""
  from skel_llm.models import pretrained  # light: hashlib, json
  c.init_from = "hf:" + str(pretrained.ASSET_DIR)
  c.trainable = (RENDERER, PROJECTOR)
  c.data.classes = DEMO_PRETRAINED_SEEN
  c.data.eval_classes = DEMO_PRETRAINED_UNSEEN
  # The corruption sweep measures DrAction's robustness, not the zero-shot transfer: left to
  # the `demo` preset (it would triple each stage's evaluation time).
  evals = {k: v for k, v in c.evals.items() if k != "robustness"}
  # The validation split choices are made on (issue 15: never on the unseen classes): held-out
  # seeds of the seen classes, candidates the 12 seen names (chance 1 / 12), at each stage's end.
  for name in ("heldout", "heldout_score"):
    if name in evals:
      ev = dict(evals[name])
      ev.update(every_steps=0, data=dict(ev["data"], class_split="seen"))
      evals[f"{name}_seen"] = ev
  c.evals = ml_collections.ConfigDict(evals)


def _smoke(c: ml_collections.ConfigDict) -> None:
  """Seconds on CPU: for tests (tiny shapes, 6 frames of 32^2, few steps)."""
  c.total_steps = 20
  c.batch_size = 8
  c.log_every = 5
  c.checkpoint.every_steps = 5
  c.checkpoint.async_save = False
  c.render.image_size = 24
  c.render.num_frames = 4
  c.model.patch_size = 6
  c.optim.lr = 1e-3
  c.data.classes = ()
  c.data.synthetic_knobs = {}
  c.model.vision_width = 32
  c.model.vision_mlp = 64
  c.model.text_width = 64
  c.model.text_mlp = 128
  c.model.vision_layers = 1
  c.model.text_layers = 1
  c.data.num_train_clips = 64
  c.data.num_eval_clips = 16
  c.data.max_len = 400
  c.data.prefetch = 0
  c.evals = ml_collections.ConfigDict(dict(
      heldout=options.evaluator("recognition", num_clips=8, max_new_tokens=8)))
  c.export.renderer = False


# `paper` is the SkeletonLLM paper's InternVL3-8B; `paper_1b` / `paper_2b` the same recipe on
# the smaller InternVL3 models (same InternViT-300M, Qwen2.5-0.5B / 1.5B; skel_llm.models).
PAPER_SIZES = {"paper": "8b", "paper_1b": "1b", "paper_2b": "2b"}


def _paper(c: ml_collections.ConfigDict, size: str = "8b") -> None:
  """InternVL3-<size> from a local folder, NTU-60 48/12, the paper's hyper-parameters, 8+ chips."""
  folder = f"/models/InternVL3-{size.upper()}-hf"
  c.init_from = "hf:" + folder
  c.text.tokenizer = folder
  c.text.system = "internvl"
  c.model.preset = f"internvl3_{size}"
  c.model.dtype = "bfloat16"
  c.model.param_dtype = "bfloat16"
  c.model.remat = "full"
  c.model.scan_layers = True
  c.model.patch_size = 14
  c.render.image_size = 448
  c.render.num_frames = 12  # the paper's 12 frames (docs/method.md); the base default is 6
  c.render.dense = False
  c.data.source = "tfds"
  c.data.classes = ()
  c.data.synthetic_knobs = {}
  c.data.tfds_name = "ntu_rgbd/ntu60_xsub"
  c.data.data_dir = "/data/tensorflow_datasets"
  c.data.protocol = "ntu60_48_12"
  c.data.max_frames = 300
  c.data.max_len = 3584
  c.data.confusable_file = ""
  # The authors trained with global batch 2 on 2 GPUs; on 8+ chips we keep 1 clip per
  # data-parallel replica: batch 8 over (data x fsdp) = 4 x 2, tensor 2 (16 chips: data -1).
  c.batch_size = 8
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=2, tensor=2))
  c.optim.lr = 2e-5
  c.optim.warmup_fraction = 0.03
  c.optim.end_fraction = 0.0
  c.optim.weight_decay = 0.05
  c.epochs = 1.0
  c.log_every = 50
  c.checkpoint.every_steps = 500
  # Greedy decoding of <= 16 tokens on the whole test split at the end of the stage, as before
  # the evaluator registry. The authors also used repetition_penalty 1.05
  # (--config.evals.heldout.repetition_penalty=1.05); likelihood ranking is one flag away
  # (--config.evals.heldout_score.num_clips=100000).
  c.evals = ml_collections.ConfigDict(dict(
      heldout=options.evaluator("recognition", method="decode", num_clips=100_000, batch_size=8,
                                max_new_tokens=16, prompt="mqa"),
      heldout_score=options.evaluator("recognition", method="score", num_clips=0,
                                      batch_size=8, prompt="mqa"),
  ))
  c.data.eval_task = "mqa"
  c.model.lora_alpha = 64.0
  c.model.lora_dropout = 0.05
