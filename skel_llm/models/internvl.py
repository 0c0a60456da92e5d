"""The composed InternVL3 model: vision tower -> pixel shuffle -> projector -> Qwen2.5.

Axis letters: B batch, F frames (images) per sample, N images in all, T visual tokens per image,
L tokens, V vocabulary, D text width.

Visual tokens replace the `<IMG_CONTEXT>` positions of the text with static shapes: the k-th
`<IMG_CONTEXT>` (counted by a cumulative sum) takes visual token k through a gather and a
`where`, so nothing depends on data-dependent shapes.

With `config.visual_tokens_per_frame` = K (foreground sparsification) each image gives K
tokens, those of its K most intense cells (`vision.select_cells`); an image with fewer
foreground cells pads, and the padded tokens' positions are masked out of the LLM's
attention (as keys) as they are in InternViT's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from skel_llm.models import layers, partitioning as part, qwen2, vision
from skel_llm.models.config import InternVLConfig


def causal_mask(attention_mask: jax.Array) -> jax.Array:
  """bool[B, L, L]: query i may see key j when j <= i and key j is not padding."""
  n = attention_mask.shape[1]
  tril = jnp.tril(jnp.ones((n, n), dtype=bool))
  return tril[None] & attention_mask.astype(bool)[:, None, :]


def _is_concrete(x: jax.Array) -> bool:
  return not isinstance(x, jax.core.Tracer)


class InternVL(nnx.Module):
  """InternVL3 (transformers' `InternVLForConditionalGeneration` semantics)."""

  def __init__(self, config: InternVLConfig, *, rngs: nnx.Rngs):
    self.config = config
    self.vision_tower = vision.VisionTower(config, rngs)
    self.multi_modal_projector = vision.Projector(config, rngs)
    self.language_model = qwen2.TextModel(config, rngs)
    t = config.text
    self.lm_head = (None if t.tie_word_embeddings else
                    layers.param(rngs, (t.hidden_size, t.vocab_size), ("embed", "vocab"),
                                 config.weight_dtype))

  # --- vision -----------------------------------------------------------------------------

  def get_image_features(self, pixel_values: jax.Array) -> jax.Array:
    """float[N, 3, H, W] -> float[N, T, D]: tower, drop class token, pixel shuffle, projector."""
    return self.image_tokens(pixel_values)[0]

  def image_tokens(self, pixel_values: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    """(float[N, T, D] visual tokens, bool[N, T] real (False = padding) or None when dense).

    Dense: every cell, T = `cells_per_image`. Sparse (`visual_tokens_per_frame` = K): the
    tokens of the K cells `vision.select_cells` keeps, from InternViT run on their patches.
    """
    c = self.config
    f = c.shuffle_factor
    k = c.visual_tokens_per_frame
    if not k:
      feats = self.vision_tower(pixel_values)[:, 1:]
      n, hw, d = feats.shape
      g = round(hw ** 0.5)
      feats = vision.pixel_shuffle(feats.reshape(n, g, g, d), f)
      return self.multi_modal_projector(feats.reshape(n, -1, feats.shape[-1])), None
    g = pixel_values.shape[-1] // c.patch_size
    cells, valid = vision.select_cells(pixel_values, c.patch_size * f, k, c.foreground_threshold)
    patch_index = vision.cell_patches(cells, g, f)
    patch_valid = jnp.repeat(valid, f * f, axis=1)
    feats = self.vision_tower.sparse(pixel_values, patch_index, patch_valid)[:, 1:]
    n, _, d = feats.shape
    return self.multi_modal_projector(feats.reshape(n, k, f * f * d)), valid

  # --- text + merge -----------------------------------------------------------------------

  def embed_inputs(self, input_ids: jax.Array, pixel_values: jax.Array | None = None
                   ) -> jax.Array:
    """Token embeddings float[B, L, D] with visual tokens at the `<IMG_CONTEXT>` positions.

    See `embed_inputs_masked`, which also says which positions hold padded visual tokens.
    """
    return self.embed_inputs_masked(input_ids, pixel_values)[0]

  def embed_inputs_masked(self, input_ids: jax.Array, pixel_values: jax.Array | None = None
                          ) -> tuple[jax.Array, jax.Array | None]:
    """(float[B, L, D] embeddings, bool[B, L] keep or None): visual tokens merged in.

    keep is False at the `<IMG_CONTEXT>` positions that took a padded visual token (sparse
    path, an image with fewer foreground cells than K); the caller masks them as keys. None
    on the dense path and without images.

    Args:
      input_ids: int[B, L].
      pixel_values: None (text only); float[N, 3, H, W] (transformers convention: visual tokens
        fill the `<IMG_CONTEXT>` positions of the whole batch in row-major order); or
        float[B, F, 3, H, W] (per sample: row b's `<IMG_CONTEXT>` positions take the tokens of
        its own F frames in order).
    """
    x = self.language_model.embed(input_ids)
    if pixel_values is None:
      return x, None
    is_img = input_ids == self.config.image_token_id
    if pixel_values.ndim == 5:
      b, f = pixel_values.shape[:2]
      if b != input_ids.shape[0]:
        raise ValueError(f"pixel_values float[B, F, 3, H, W] has B={b} but input_ids has "
                         f"{input_ids.shape[0]} rows")
      pixel_values = part.constrain(pixel_values, (part.BATCH,) + (None,) * 4)
      images = part.constrain(pixel_values.reshape(b * f, *pixel_values.shape[2:]),
                              (part.BATCH,) + (None,) * 3)
      feats, valid = self.image_tokens(images)
      # [B, F*T, D]: each row's visual tokens stay with its clip, so the merge is row-local.
      feats = part.constrain(feats.reshape(b, -1, feats.shape[-1]).astype(x.dtype),
                             part.RESIDUAL)
      counts = is_img.sum(axis=1)
      if _is_concrete(counts) and bool((counts != feats.shape[1]).any()):
        raise ValueError(f"input_ids: each row needs {feats.shape[1]} <IMG_CONTEXT> tokens "
                         f"({f} frames x {self.config.num_image_token}), got {counts.tolist()}")
      idx = jnp.clip(jnp.cumsum(is_img, axis=1) - 1, 0, feats.shape[1] - 1)
      gathered = part.constrain(jnp.take_along_axis(feats, idx[..., None], axis=1),
                                part.RESIDUAL)
      if valid is not None:
        valid = jnp.take_along_axis(valid.reshape(b, -1), idx, axis=1)
    elif pixel_values.ndim == 4:
      feats, valid = self.image_tokens(pixel_values)
      flat = feats.reshape(-1, feats.shape[-1]).astype(x.dtype)  # [N*T, D]
      total = is_img.sum()
      if _is_concrete(total) and int(total) != flat.shape[0]:
        raise ValueError(f"input_ids: {int(total)} <IMG_CONTEXT> tokens for {feats.shape[0]} "
                         f"images x {feats.shape[1]} visual tokens = {flat.shape[0]}")
      idx = jnp.clip(jnp.cumsum(is_img.reshape(-1)) - 1, 0, flat.shape[0] - 1)
      gathered = jnp.take(flat, idx, axis=0).reshape(x.shape)
      if valid is not None:
        valid = jnp.take(valid.reshape(-1), idx, axis=0).reshape(is_img.shape)
    else:
      raise ValueError(f"pixel_values: expected float[N, 3, H, W] or float[B, F, 3, H, W], "
                       f"got shape {pixel_values.shape}")
    keep = None if valid is None else ~is_img | valid
    return part.constrain(jnp.where(is_img[..., None], gathered, x), part.RESIDUAL), keep

  def logits(self, hidden: jax.Array) -> jax.Array:
    """float[B, L, D] -> float32[B, L, V] (tied or separate output projection)."""
    dt = self.config.compute_dtype
    hidden = part.constrain(hidden.astype(dt), part.RESIDUAL)
    if self.lm_head is None:
      w = part.constrain(self.language_model.embed_tokens[...], (part.VOCAB, None)).astype(dt)
      logits = jnp.einsum("bld,vd->blv", hidden, w, preferred_element_type=jnp.float32)
    else:
      w = part.constrain(self.lm_head[...], (None, part.VOCAB)).astype(dt)
      logits = jnp.einsum("bld,dv->blv", hidden, w, preferred_element_type=jnp.float32)
    return part.constrain(logits, (part.BATCH, part.LENGTH, part.VOCAB))

  def hidden_states(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
                    pixel_values: jax.Array | None = None, positions: jax.Array | None = None
                    ) -> jax.Array:
    """Final-normed decoder states float[B, L, D] (see `__call__` for the arguments)."""
    b, n = input_ids.shape
    if attention_mask is None:
      attention_mask = jnp.ones((b, n), dtype=bool)
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (b, n))
    x, keep = self.embed_inputs_masked(input_ids, pixel_values)
    if keep is not None:
      attention_mask = attention_mask.astype(bool) & keep
    hidden, _ = self.language_model(x, positions, causal_mask(attention_mask))
    return hidden

  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
               pixel_values: jax.Array | None = None, positions: jax.Array | None = None
               ) -> jax.Array:
    """Full-vocabulary logits float32[B, L, V].

    Args:
      input_ids: int[B, L]; each `<IMG_CONTEXT>` takes the next visual token.
      attention_mask: int/bool[B, L], 1 = real token (None: all real). Causal + key padding.
      pixel_values: None, float32[N, 3, H, W] or float32[B, F, 3, H, W] (see `embed_inputs`).
      positions: int[B, L] rotary positions; None = 0..L-1 per row (transformers' forward).
    """
    return self.logits(self.hidden_states(input_ids, attention_mask, pixel_values, positions))


def merge_lora(model: InternVL) -> None:
  """Folds every LoRA adapter into its base kernel in place (outputs unchanged)."""
  for _, module in nnx.iter_modules(model):
    if isinstance(module, layers.Linear):
      module.merge_lora()
