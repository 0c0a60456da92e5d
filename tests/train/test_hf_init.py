"""Pins `config.init_from = "hf:<folder>"` (skel_llm/train/build.py): a transformers InternVL
folder initialises the sharded train state of a run, tensor by tensor onto its shards.

A tiny random `InternVLForConditionalGeneration` with the smoke preset's sizes is saved with
`save_pretrained`; a run with the stage-3 rules (renderer + projector + LoRA train) on a
(data 2, fsdp 2, tensor 2) mesh of the 8 simulated devices starts from it. The run's logits
must match transformers' on the run's own rendered frames and prompts; every variable keeps the
sharding of the run's layout; LoRA and the renderer keep their fresh initialisation.
"""

import pathlib
import shutil

import jax
import numpy as np
from flax import nnx
import pytest

from skel_llm.models.tokenizer import TINY_TOKENIZER_DIR, tiny_tokenizer_ids
from skel_llm.train import build, defaults, trainer
from skel_llm.train import state as state_lib

REPO = pathlib.Path(__file__).resolve().parents[2]


def _smoke_config():
  c = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  c.data.task = "mqa"
  c.data.max_len = 320
  c.model.lora_rank = 4
  c.trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
  c.mesh.update(dict(data=2, fsdp=2, tensor=2))
  c.optim.warmup_fraction = 0.0  # the first step already moves the trained parameters
  return c


def _save_hf(folder: pathlib.Path, c, seed: int = 0):
  """A transformers InternVL with the sizes of `c.model` / `c.render`, saved with tokenizer."""
  import torch
  from transformers import InternVLConfig, InternVLForConditionalGeneration
  vocab, img_id = tiny_tokenizer_ids()
  m = c.model
  cfg = InternVLConfig(
      image_token_id=img_id, downsample_ratio=m.downsample_ratio, tie_word_embeddings=True,
      vision_config=dict(hidden_size=m.vision_width, num_hidden_layers=m.vision_layers,
                         num_attention_heads=m.vision_heads, intermediate_size=m.vision_mlp,
                         image_size=c.render.image_size, patch_size=m.patch_size,
                         attention_bias=True, layer_norm_eps=1e-6),
      text_config=dict(model_type="qwen2", vocab_size=vocab, hidden_size=m.text_width,
                       num_hidden_layers=m.text_layers, num_attention_heads=m.text_heads,
                       num_key_value_heads=m.text_kv_heads, head_dim=m.text_width // m.text_heads,
                       intermediate_size=m.text_mlp, tie_word_embeddings=True, rms_norm_eps=1e-6,
                       rope_parameters={"rope_type": "default", "rope_theta": 1e6}))
  torch.manual_seed(seed)
  model = InternVLForConditionalGeneration(cfg).eval()
  with torch.no_grad():  # away from the structured init (zero embeddings, unit norms)
    for p in model.parameters():
      p.add_(0.05 * torch.randn_like(p))
  model.save_pretrained(str(folder))
  for f in TINY_TOKENIZER_DIR.iterdir():
    shutil.copy(f, folder / f.name)
  return model


@pytest.fixture(scope="module")
def started(tmp_path_factory):
  folder = tmp_path_factory.mktemp("internvl_smoke_hf")
  c = _smoke_config()
  hf = _save_hf(folder, c)
  c.init_from = f"hf:{folder}"
  run = trainer.Run(c, devices=jax.devices()[:8])
  fresh = jax.tree.map(np.asarray, run.init_state())
  state, start = run.restore_or_init(None)
  return hf, run, fresh, state, start, folder


def test_hf_weights_reach_every_shard_and_match_transformers(started):
  import torch
  hf, run, _, state, start, folder = started
  assert start == 0 and int(state["step"]) == 0
  # Each tensor lands on its shards as it is read: the loaded arrays already carry the layout.
  loaded = build._hf_variables(run, str(folder))
  layout = state_lib.merge_variables(run.layout.shardings)
  placed = 0
  for (path, x), want in zip(
      jax.tree_util.tree_leaves_with_path(loaded, is_leaf=lambda v: v is None),
      jax.tree.leaves(layout, is_leaf=lambda v: v is None)):
    if x is not None:
      assert x.sharding.is_equivalent_to(want, x.ndim), jax.tree_util.keystr(path)
      placed += 1
  assert placed == len([p for p in run.layout.frozen_paths + run.layout.trainable_paths
                        if p.startswith("mllm/") and "lora_" not in p])
  for part in ("params", "frozen", "opt_state"):
    for (path, x), want in zip(jax.tree_util.tree_leaves_with_path(state[part]),
                               jax.tree.leaves(run.layout.shardings[part])):
      assert x.sharding.is_equivalent_to(want, x.ndim), f"{part}{jax.tree_util.keystr(path)}"
  specs = [str(x.sharding.spec) for x in jax.tree.leaves(state["frozen"]["mllm"])]
  assert any("fsdp" in s for s in specs) and any("tensor" in s for s in specs)

  batch = run.train_data.batch(0)
  rows = slice(0, 2)
  frames = run.render_fn()(state, jax.numpy.asarray(batch["positions"]),
                           jax.numpy.asarray(batch["num_frames"]))
  model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
  with jax.default_matmul_precision("highest"):
    got = np.asarray(model.logits_from_frames(frames[rows],
                                              jax.numpy.asarray(batch["input_ids"][rows]),
                                              jax.numpy.asarray(batch["input_mask"][rows])))
  px = np.array(frames[rows]).transpose(0, 1, 4, 2, 3)  # [B, n, 3, S, S]
  with torch.no_grad():
    want = hf(input_ids=torch.as_tensor(batch["input_ids"][rows], dtype=torch.long),
              attention_mask=torch.as_tensor(batch["input_mask"][rows], dtype=torch.long),
              pixel_values=torch.as_tensor(px.reshape((-1,) + px.shape[2:]))).logits.numpy()
  real = batch["input_mask"][rows].astype(bool)
  np.testing.assert_allclose(got[real], want[real], atol=1e-4, rtol=0)


def test_adapters_and_renderer_stay_fresh(started):
  _, run, fresh, state, _, _ = started
  flat = {jax.tree_util.keystr(p): np.asarray(x)
          for p, x in jax.tree_util.tree_leaves_with_path(state["params"])}
  flat_fresh = {jax.tree_util.keystr(p): x
                for p, x in jax.tree_util.tree_leaves_with_path(fresh["params"])}
  lora_b = [k for k in flat if k.endswith("['lora_b']")]
  renderer = [k for k in flat if k.startswith("['renderer']")]
  assert lora_b and renderer
  for k in lora_b + renderer + [k for k in flat if k.endswith("['lora_a']")]:
    np.testing.assert_array_equal(flat[k], flat_fresh[k], err_msg=k)
  # The projector (trained here) came from the checkpoint, not from the fresh init.
  proj = [k for k in flat if "multi_modal_projector" in k]
  assert proj and all(not np.array_equal(flat[k], flat_fresh[k]) for k in proj)


def test_the_step_trains_from_it_and_leaves_the_llm_alone(started):
  _, run, _, state, _, _ = started
  frozen = jax.tree.map(np.asarray, state["frozen"])
  step = run.step_fn()
  state, metrics = step(state, run.batch_to_device(run.train_data.batch(0)), jax.random.key(0))
  assert np.isfinite(float(metrics["loss"])) and float(metrics["l2_updates"]) > 0
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(state["frozen"]),
                          jax.tree.leaves(frozen)):
    np.testing.assert_array_equal(np.asarray(a), b, err_msg=jax.tree_util.keystr(path))


def test_a_checkpoint_of_another_size_is_refused_naming_the_preset(tmp_path):
  c = _smoke_config()
  other = _smoke_config()
  other.model.text_mlp = 96
  _save_hf(tmp_path, other)
  c.init_from = f"hf:{tmp_path}"
  run = trainer.Run(c, devices=jax.devices()[:8])
  with pytest.raises(ValueError) as err:
    run.restore_or_init(None)
  msg = str(err.value)
  assert "does not fit config.model (preset 'tiny')" in msg
  assert ("language_model.model.layers.0.mlp.gate_proj.weight -> language_model/layers/0/mlp/"
          "gate_proj/kernel: shape (64, 96), expected (64, 128)") in msg, msg
