"""Pins the foreground sparsification of skel_llm/models/{vision,internvl,generate}.py
(`InternVLConfig.visual_tokens_per_frame`): cell selection against hand-computed cells, the
patch order against the pixel shuffle, the sparse path against the dense one when every cell
is kept, and padding that neither the vision tower nor the LLM can see."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm import models
from skel_llm.models import config as config_lib
from skel_llm.models import vision

# Checkpoint table 56 px, frames 112 px: positions are bicubic-interpolated (4 x 4 = 16
# cells of 28 px per frame).
RUN = 112


def _config(**changes):
  return models.tiny_config(image_size=56).replace(image_size=RUN, **changes)


def _ids(config, frames, k):
  """int32[2, L]: two rows of text around `frames` images of k <IMG_CONTEXT> each."""
  rows = []
  for b in range(2):
    row = [11 + b, 12, 13]
    for _ in range(frames):
      row += [3] + [config.image_token_id] * k + [4]
    rows.append(row + [21, 22 + b, 23])
  return np.asarray(rows, np.int32)


def logits_and_grad(model, ids, px, where=None):
  """(logits float32[B, L, V], d sum(sin(logits[where])) / d pixels), jitted."""
  graphdef, state = nnx.split(model)
  where = np.ones(ids.shape, bool) if where is None else where
  out = _forward_grad(graphdef, state, jnp.asarray(ids), jnp.asarray(px), jnp.asarray(where))
  return tuple(np.asarray(x) for x in out)


@functools.partial(jax.jit, static_argnums=0)
def _forward_grad(graphdef, state, ids, px, where):
  def total(px):
    logits = nnx.merge(graphdef, state)(ids, None, px)
    # sin: a gradient that depends on every logit counted.
    return jnp.sum(jnp.where(where[..., None], jnp.sin(logits), 0.0)), logits
  (_, logits), grad = jax.value_and_grad(total, has_aux=True)(px)
  return logits, grad


def test_select_cells_hand_computed():
  """3 x 3 cells of 28 px: the K brightest foreground cells in raster order, then padding."""
  px = np.zeros((2, 3, 84, 84), np.float32)
  px[0, 1, 56 + 3, 28 + 5] = 0.5  # cell 7: one pixel, sum 0.5
  px[0, :, :28, 56:] = 1.0  # cell 2: the whole cell, sum 3 * 28 * 28
  px[0, 0, 30:40, 60:70] = 0.2  # cell 5: sum 100 * 0.2 = 20
  px[0, 2, 0, 0] = 0.5 / 255  # cell 0: below the one-level threshold -> background
  px[1] = 0.01  # every cell foreground, equal sums
  px[1, :, 28:56, 28:56] = 0.5  # cell 4 brightest
  cells, fg = vision.select_cells(jnp.asarray(px), 28, 5, 1 / 255)
  cells, fg = np.asarray(cells), np.asarray(fg)
  np.testing.assert_array_equal(cells[0, :3], [2, 5, 7])
  np.testing.assert_array_equal(fg[0], [True, True, True, False, False])
  pad = cells[0, 3:]
  assert len(set(pad)) == 2 and not set(pad) & {2, 5, 7} and list(pad) == sorted(pad)
  assert fg[1].all() and 4 in cells[1] and list(cells[1]) == sorted(cells[1])
  cells, fg = vision.select_cells(jnp.asarray(px), 28, 2, 1 / 255)
  np.testing.assert_array_equal(np.asarray(cells)[0], [2, 5])
  # Cell 0 becomes foreground at 0.4 + 0.5 / 255 in one channel, still below cell 7's 0.5.
  px[0, 0, 3, 3] = 0.4
  cells, _ = vision.select_cells(jnp.asarray(px), 28, 3, 1 / 255)
  np.testing.assert_array_equal(np.asarray(cells)[0], [2, 5, 7])
  cells, fg = vision.select_cells(jnp.asarray(px), 28, 4, 1 / 255)
  np.testing.assert_array_equal(np.asarray(cells)[0], [0, 2, 5, 7])
  assert np.asarray(fg)[0].all()


def test_cell_patches_follow_pixel_shuffle():
  """Tower outputs gathered at `cell_patches` and reshaped are the pixel-shuffled tokens."""
  g, d = 8, 3
  feats = np.arange(2 * g * g * d, dtype=np.float32).reshape(2, g * g, d)
  want = np.asarray(vision.pixel_shuffle(jnp.asarray(feats).reshape(2, g, g, d), 2))
  want = want.reshape(2, (g // 2) ** 2, 4 * d)
  cells = jnp.asarray([[0, 5, 6, 15], [1, 2, 3, 12]])
  idx = np.asarray(vision.cell_patches(cells, g, 2))
  got = np.take_along_axis(feats, idx[..., None], axis=1).reshape(2, 4, 4 * d)
  np.testing.assert_array_equal(got, want[np.arange(2)[:, None], np.asarray(cells)])


def test_all_cells_equal_dense():
  """K = every cell on all-foreground frames: logits and d(logits)/d(pixels) of the dense path,
  interpolated positions, per-sample frames."""
  dense = _config()
  cells = dense.cells_per_image
  assert cells == 16
  sparse = dense.replace(visual_tokens_per_frame=cells)
  rng = np.random.default_rng(0)
  px = rng.uniform(0.05, 1, (2, 3, 3, RUN, RUN)).astype(np.float32)
  ids = _ids(dense, 3, cells)
  want, want_grad = logits_and_grad(models.InternVL(dense, rngs=nnx.Rngs(0)), ids, px)
  got, got_grad = logits_and_grad(models.InternVL(sparse, rngs=nnx.Rngs(0)), ids, px)
  np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
  np.testing.assert_allclose(got_grad, want_grad, atol=1e-6 * np.abs(want_grad).max(), rtol=0)


@pytest.fixture(scope="module")
def padded():
  """K = 6 of 16 cells with a high threshold: frame 0 has 6 bright cells, frame 1 has 2, and
  every other cell holds dim clutter below the threshold (padding, when picked). Layers
  under scan (the mask rides along as a scan argument)."""
  config = _config(visual_tokens_per_frame=6, foreground_threshold=200.0, scan_layers=True)
  rng = np.random.default_rng(1)
  bright = {0: [0, 3, 5, 6, 9, 15], 1: [4, 10]}
  px = rng.uniform(0, 0.05, (2, 2, 3, RUN, RUN)).astype(np.float32)  # cell sums <= 118
  for f, cells in bright.items():
    for c in cells:
      i, j = divmod(c, 4)
      px[:, f, :, 28 * i:28 * i + 28, 28 * j:28 * j + 28] = rng.uniform(0.3, 1, (2, 3, 28, 28))
  return config, models.InternVL(config, rngs=nnx.Rngs(0)), px, bright


def test_padding_is_invisible(padded):
  """Replacing the clutter changes what the padded tokens compute but no logit at a real
  position, and no gradient reaches a pixel outside the kept foreground cells."""
  config, model, px, bright = padded
  ids = _ids(config, 2, 6)
  fg = np.zeros((2, RUN, RUN), bool)  # [frame, H, W]: the bright cells
  for f, cells in bright.items():
    for c in cells:
      i, j = divmod(c, 4)
      fg[f, 28 * i:28 * i + 28, 28 * j:28 * j + 28] = True
  noise = np.random.default_rng(2).uniform(0, 0.05, px.shape).astype(np.float32)
  clutter = np.where(fg[None, :, None], px, noise)
  _, keep = model.embed_inputs_masked(jnp.asarray(ids), jnp.asarray(px))
  keep = np.asarray(keep)
  img = ids == config.image_token_id
  assert (~keep).sum() == 2 * 4 and keep[~img].all()  # frame 1 pads 4 of its 6 per row
  feats_a, real = model.image_tokens(jnp.asarray(px[0]))  # sample 0's two frames
  feats_b, _ = model.image_tokens(jnp.asarray(clutter[0]))
  feats_a, feats_b, real = np.asarray(feats_a), np.asarray(feats_b), np.asarray(real)
  np.testing.assert_array_equal(real, [[True] * 6, [True] * 2 + [False] * 4])
  assert np.abs(feats_a[~real] - feats_b[~real]).max() > 1e-3  # the padding computed anew
  np.testing.assert_allclose(feats_b[real], feats_a[real], atol=1e-6, rtol=0)
  # The loss counts real positions only, as training counts answer tokens only.
  got, grad = logits_and_grad(model, ids, clutter, keep)
  want, _ = logits_and_grad(model, ids, px, keep)
  np.testing.assert_allclose(got[keep], want[keep], atol=1e-6, rtol=0)
  g = np.abs(grad).sum(axis=2)  # [B, F, H, W]
  for f in range(2):
    assert (g[:, f][:, ~fg[f]] == 0).all()
    assert (g[:, f][:, fg[f]] > 0).mean() > 0.99


def test_padded_prompt_cached_scoring_equals_full(padded):
  """The KV-cache prefill masks padded visual tokens as the full forward does: candidate
  log-probabilities with and without the cache agree."""
  config, model, px, _ = padded
  ids = _ids(config, 2, 6)
  cand = np.asarray([[[30, 31, 32], [33, 34, 0]], [[35, 36, 37], [38, 0, 0]]], np.int32)
  cmask = cand > 0
  full = models.score_candidates(model, ids, np.ones_like(ids), px, cand, cmask,
                                 reuse_prefix=False)
  cached = models.score_candidates(model, ids, np.ones_like(ids), px, cand, cmask)
  np.testing.assert_allclose(np.asarray(cached), np.asarray(full), atol=1e-5, rtol=0)


def test_prompts_carry_k_tokens_and_config_checks(padded):
  """The trainer's prompt encoder writes K <IMG_CONTEXT> per frame; K beyond the cells and a
  prompt with the dense count are refused with the numbers."""
  from skel_llm.text import chat
  from skel_llm.train import build, defaults
  c = defaults.load_config("configs/warmup.py", "smoke")  # 24 px / patch 6: 4 cells per frame
  c.model.visual_tokens_per_frame = 3
  tok = build.tokenizer(c)
  enc = build.encoder(c, tok)
  ids = enc.encode(chat.IMAGE_PLACEHOLDER * 4, "Label: x").input_ids
  assert (ids == tok.token_id(chat.IMG_CONTEXT)).sum() == 4 * 3
  mcfg = build.mllm_config(c, tok)
  assert (mcfg.num_image_token, mcfg.cells_per_image) == (3, 4)
  with pytest.raises(ValueError, match="visual_tokens_per_frame: expected 0 .* to 16"):
    _config(visual_tokens_per_frame=17)
  assert config_lib.to_hf_dict(_config(visual_tokens_per_frame=5))["image_seq_length"] == 16
  config, model, px, _ = padded
  with pytest.raises(ValueError, match=r"needs 12 <IMG_CONTEXT>.*got \[32, 32\]"):
    model.embed_inputs(jnp.asarray(_ids(config, 2, 16)), jnp.asarray(px))
