"""Pins skel_llm/models/checkpoint.py: both layouts load and match transformers end to end."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from skel_llm import models
from skel_llm.models import checkpoint


def _jit_apply(model, method, *args):
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(state, *args):
    return getattr(nnx.merge(graphdef, state), method)(*args)

  return np.asarray(run(state, *args))


def _prompt_batch(tok, config, n_images_per_row):
  """Chat-formatted prompts with `<img><IMG_CONTEXT>*T</img>` per frame, right-padded."""
  t = config.num_image_token
  rows = []
  for n in n_images_per_row:
    frames = "".join(f"Frame{i + 1}: <img>{'<IMG_CONTEXT>' * t}</img>\n" for i in range(n))
    text = frames + "These frames are skeleton renderings. Is the action 'drink water'? " \
                    "Answer YES or NO."
    chat = tok.apply_chat_template([{"role": "user", "content": text}],
                                   add_generation_prompt=True, tokenize=False)
    rows.append(tok(chat)["input_ids"])
  width = max(map(len, rows))
  ids = np.full((len(rows), width), tok.pad_token_id, np.int64)
  mask = np.zeros((len(rows), width), np.int64)
  for i, r in enumerate(rows):
    ids[i, :len(r)] = r
    mask[i, :len(r)] = 1
  return ids, mask


@pytest.mark.parametrize("kind,layout", [("a", "hf"), ("b", "hf"), ("a", "original"),
                                         ("b", "original")])
def test_full_model_matches_transformers(hf_checkpoints, kind, layout):
  import torch
  ref = hf_checkpoints(kind)
  model, tok, config = models.load_pretrained(ref[layout], image_size=ref["run_size"])
  assert config.image_token_id == tok.convert_tokens_to_ids("<IMG_CONTEXT>")
  ids, mask = _prompt_batch(tok, config, [1, 2])
  rng = np.random.default_rng(0)
  px = rng.uniform(0, 1, (3, 3, ref["run_size"], ref["run_size"])).astype(np.float32)
  hf = ref["model"]
  with torch.no_grad():
    tpx = torch.from_numpy(px)
    want_vis = hf.model.vision_tower(pixel_values=tpx).last_hidden_state.numpy()
    want_proj = hf.model.get_image_features(pixel_values=tpx).pooler_output.numpy()
    want = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
              pixel_values=tpx).logits.numpy()
  got_vis = _jit_apply(model, "vision_tower", jnp.asarray(px))
  got_proj = _jit_apply(model, "get_image_features", jnp.asarray(px))
  got = _jit_apply(model, "__call__", jnp.asarray(ids, jnp.int32), jnp.asarray(mask),
                   jnp.asarray(px))
  assert got.dtype == np.float32 and got.shape == want.shape
  np.testing.assert_allclose(got_vis, want_vis, atol=1e-4, rtol=0)
  np.testing.assert_allclose(got_proj, want_proj, atol=1e-4, rtol=0)
  real = mask.astype(bool)
  np.testing.assert_allclose(got[real], want[real], atol=1e-4, rtol=0)


def test_export_round_trips_to_transformers(hf_checkpoints, tmp_path):
  import torch
  from transformers import InternVLForConditionalGeneration
  ref = hf_checkpoints("b")
  model, tok, _ = models.load_pretrained(ref["hf"])
  out = models.export_hf(model, tmp_path / "export", tokenizer=tok)
  exported = load_file(out / "model.safetensors")
  want = {k: v.numpy() for k, v in ref["model"].state_dict().items()}
  want.pop("lm_head.weight")  # Tied to the embedding: not a separate tensor in our export.
  renamed = {checkpoint.hf_to_flax_key(k)[0]: k for k in exported}
  assert len(renamed) == len(exported) == len(want)
  for key, x in exported.items():
    target = key.replace("language_model.model.", "model.language_model.")
    target = target if target in want else "model." + key
    np.testing.assert_array_equal(x, want[target], err_msg=key)
  reloaded = InternVLForConditionalGeneration.from_pretrained(str(out)).eval()
  ids = torch.tensor([[5, 7, 9, 11]])
  with torch.no_grad():
    np.testing.assert_array_equal(reloaded(input_ids=ids).logits.numpy(),
                                  ref["model"](input_ids=ids).logits.numpy())


# --- bad checkpoints --------------------------------------------------------------------

def _copy(src, dst):
  shutil.copytree(src, dst)
  return dst


def _rewrite_weights(folder, edit):
  path = folder / "model.safetensors"
  tensors = load_file(path)
  edit(tensors)
  save_file(tensors, str(path))


def test_missing_key_is_named(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["hf"], tmp_path / "ckpt")
  _rewrite_weights(folder, lambda t: t.pop("language_model.model.layers.1.mlp.up_proj.weight"))
  with pytest.raises(ValueError) as e:
    models.load_pretrained(folder)
  assert "missing target: language_model/layers/1/mlp/up_proj/kernel" in str(e.value)


def test_wrong_shape_and_unknown_key_are_named(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["hf"], tmp_path / "ckpt")

  def edit(t):
    t["multi_modal_projector.linear_1.weight"] = t["multi_modal_projector.linear_1.weight"][:, :7]
    t["vision_tower.encoder.layer.0.attention.extra.weight"] = np.zeros(3, np.float32)
  _rewrite_weights(folder, edit)
  with pytest.raises(ValueError) as e:
    models.load_pretrained(folder)
  msg = str(e.value)
  assert "shape mismatch: model.safetensors:multi_modal_projector.linear_1.weight" in msg
  assert "expected (192, 48)" in msg
  assert "unmapped source key: model.safetensors:vision_tower.encoder.layer.0.attention.extra" \
         ".weight" in msg


def test_unknown_layout_is_named(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["hf"], tmp_path / "ckpt")
  cfg = json.loads((folder / "config.json").read_text())
  cfg["model_type"], cfg["architectures"] = "llava", ["LlavaForConditionalGeneration"]
  (folder / "config.json").write_text(json.dumps(cfg))
  with pytest.raises(ValueError, match=r"config\.json: unknown checkpoint layout \(model_type "
                                       r"'llava'"):
    models.load_pretrained(folder)


def test_chat_template_defaults_to_internvl2_5(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["original"], tmp_path / "ckpt")
  cfg = json.loads((folder / "tokenizer_config.json").read_text())
  del cfg["chat_template"]
  (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
  _, tok, _ = models.load_pretrained(folder)
  text = tok.apply_chat_template([{"role": "user", "content": "Q"}], add_generation_prompt=True,
                                 tokenize=False)
  assert text == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_missing_tokenizer_file_is_named(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["original"], tmp_path / "ckpt")
  (folder / "tokenizer.json").unlink()
  with pytest.raises(FileNotFoundError, match=r"no tokenizer file; expected one of "
                                              r"tokenizer\.json"):
    models.load_pretrained(folder)


def test_original_qkv_must_split_in_three(hf_checkpoints, tmp_path):
  folder = _copy(hf_checkpoints("b")["original"], tmp_path / "ckpt")
  shard = folder / "model-00002-of-00002.safetensors"
  tensors = load_file(shard)
  key = next(k for k in tensors if k.endswith("attn.qkv.weight"))
  tensors[key] = tensors[key][:-1]
  save_file(tensors, str(shard))
  with pytest.raises(ValueError, match=f"{key}: fused qkv first dimension 143"):
    models.load_pretrained(folder)


def test_sharded_load_places_each_tensor(hf_checkpoints):
  """Tensors go straight to their shardings (8 simulated devices), chosen from logical axes."""
  from jax.sharding import NamedSharding, PartitionSpec
  if jax.device_count() < 8:
    pytest.skip("needs 8 (simulated) devices")
  mesh = jax.make_mesh((8,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))

  def shardings(path, var):
    axes = var.get_metadata()["out_sharding"]
    spec = [("model" if a == "embed" and n % 8 == 0 else None) for a, n in zip(axes, var.shape)]
    return NamedSharding(mesh, PartitionSpec(*spec))

  ref = hf_checkpoints("b")
  plain, _, _ = models.load_pretrained(ref["hf"])
  sharded, _, _ = models.load_pretrained(ref["hf"], shardings=shardings)
  emb = sharded.language_model.embed_tokens[...]
  assert emb.sharding.spec == PartitionSpec(None, "model")
  assert len(emb.addressable_shards) == 8 and emb.addressable_shards[0].data.shape == (emb.shape[0], 6)
  ids = jnp.asarray([[5, 7, 9, 11, 13]])
  np.testing.assert_allclose(sharded(ids), plain(ids), atol=1e-5, rtol=0)


def test_bfloat16_shards_load_exactly(hf_checkpoints, tmp_path):
  """BF16 safetensors (how InternVL3 is released) decode bit-exactly into bf16 parameters."""
  import ml_dtypes
  folder = _copy(hf_checkpoints("b")["original"], tmp_path / "ckpt")
  originals = {}
  for shard in sorted(folder.glob("*.safetensors")):
    tensors = {k: v.astype(ml_dtypes.bfloat16) for k, v in load_file(shard).items()}
    originals.update(tensors)
    save_file(tensors, str(shard))
  model, _, config = models.load_pretrained(folder, dtype="bfloat16")
  assert config.param_dtype == "bfloat16"
  got = model.language_model.layers[2].mlp.down_proj.kernel[...]
  want = originals["language_model.model.layers.2.mlp.down_proj.weight"].T
  assert got.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(got), want)
  q = np.asarray(model.vision_tower.layers[1].attention.q_proj.kernel[...])
  qkv = originals["vision_model.encoder.layers.1.attn.qkv.weight"]
  np.testing.assert_array_equal(q, qkv[:48].T)


def test_sharded_export_writes_an_index_transformers_reads(hf_checkpoints, tmp_path):
  """A small max_shard_size gives several files and model.safetensors.index.json, read back by
  transformers (the external reader) and by our loader, which follows the index."""
  import torch
  from transformers import InternVLForConditionalGeneration
  ref = hf_checkpoints("a")
  model, tok, _ = models.load_pretrained(ref["hf"])
  out = models.export_hf(model, tmp_path / "export", tokenizer=tok, max_shard_size="60KB")
  index = json.loads((out / "model.safetensors.index.json").read_text())
  files = sorted(out.glob("*.safetensors"))
  assert len(files) > 2 and sorted(set(index["weight_map"].values())) == [f.name for f in files]
  per_file = {f.name: load_file(f) for f in files}
  assert all(sum(x.nbytes for x in t.values()) <= 60_000 or len(t) == 1
             for t in per_file.values())
  assert sorted(index["weight_map"]) == sorted(k for t in per_file.values() for k in t)
  assert index["metadata"]["total_size"] == sum(x.nbytes for t in per_file.values()
                                                for x in t.values())
  reloaded = InternVLForConditionalGeneration.from_pretrained(str(out)).eval()
  ids = torch.tensor([[5, 7, 9, 11]])
  with torch.no_grad():
    np.testing.assert_array_equal(reloaded(input_ids=ids).logits.numpy(),
                                  ref["model"](input_ids=ids).logits.numpy())
  back, _, _ = models.load_pretrained(out)
  for (p, a), (_, b) in zip(nnx.to_flat_state(nnx.state(model, nnx.Param)),
                            nnx.to_flat_state(nnx.state(back, nnx.Param))):
    np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]), err_msg=str(p))
  # A later single-file export into the same folder leaves no stale shard or index behind.
  models.export_hf(model, out, tokenizer=tok)
  assert [f.name for f in out.glob("*.safetensors")] == ["model.safetensors"]
  assert not (out / "model.safetensors.index.json").exists()


def test_tensor_slices_read_the_blocks_of_the_transformed_tensor(tmp_path):
  """Every block read through get_slice equals the same block of the whole tensor after its
  transform (transpose, conv flatten, qkv rows): the reference is numpy on the full array."""
  from safetensors import safe_open
  rng = np.random.default_rng(0)
  w = rng.standard_normal((12, 5)).astype(np.float32)
  conv = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
  save_file({"w": w, "conv": conv}, str(tmp_path / "t.safetensors"))
  blocks = [(slice(0, 5), slice(0, 4)), (slice(2, 5), slice(1, 3)), (slice(None), slice(3, 4))]
  with safe_open(str(tmp_path / "t.safetensors"), framework="np") as f:
    lin = checkpoint.TensorSlices(f.get_slice("w"), "linear")
    assert lin.shape == (5, 12)
    for b in blocks:
      np.testing.assert_array_equal(lin.read(b), w.T[b])
    k = checkpoint.TensorSlices(f.get_slice("w"), "linear", rows=(4, 8))  # the "k" third
    assert k.shape == (5, 4)
    for b in blocks:
      np.testing.assert_array_equal(k.read(b), w[4:8].T[b])
    c = checkpoint.TensorSlices(f.get_slice("conv"), "conv")
    assert c.shape == (12, 4)
    np.testing.assert_array_equal(c.read((slice(3, 9), slice(1, 3))),
                                  conv.reshape(4, -1).T[3:9, 1:3])
    np.testing.assert_array_equal(checkpoint.TensorSlices(f.get_slice("w"), "copy").read(),
                                  w)


@pytest.mark.parametrize("layout", ["hf", "original"])
def test_every_axis_sharded_load_equals_the_plain_load(hf_checkpoints, layout):
  """Shardings that split both axes of kernels (so transposed and qkv-split reads take blocks
  of the file tensor) give the same weights as the unsharded load, leaf by leaf."""
  from jax.sharding import NamedSharding, PartitionSpec
  if jax.device_count() < 8:
    pytest.skip("needs 8 (simulated) devices")
  mesh = jax.make_mesh((2, 4), ("a", "b"), axis_types=(jax.sharding.AxisType.Auto,) * 2)

  def shardings(path, var):
    spec = [name if n % size == 0 else None
            for (name, size), n in zip((("a", 2), ("b", 4)), var.shape)]
    return NamedSharding(mesh, PartitionSpec(*spec, *[None] * (len(var.shape) - 2)))

  ref = hf_checkpoints("b")
  plain, _, _ = models.load_pretrained(ref[layout])
  sharded, _, _ = models.load_pretrained(ref[layout], shardings=shardings)
  q = sharded.vision_tower.layers[0].attention.q_proj.kernel[...]
  assert q.sharding.spec == PartitionSpec("a", "b") and len(q.addressable_shards) == 8
  for (p, a), (_, b) in zip(nnx.to_flat_state(nnx.state(plain, nnx.Param)),
                            nnx.to_flat_state(nnx.state(sharded, nnx.Param))):
    np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]), err_msg=str(p))
