"""InternViT (vision tower), pixel shuffle and the MLP projector.

Axis letters: N images, C channels (3), P patch side, h/w patch grid, T patches (+1 class
token), D vision width, E text width, K kept cells per image (sparse path).

Semantics follow transformers' `InternVLVisionModel` / `InternVLMultiModalProjector`: a class
token, absolute position embeddings (bicubic-resized with torch's `align_corners=False`, A=-0.75
kernel when the grid differs from the checkpoint's), pre-norm blocks with layer scale
(lambda_1, lambda_2), optional qk RMSNorm and RMSNorm blocks (InternViT-6B).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skel_llm.models import layers, partitioning as part
from skel_llm.models.config import InternVLConfig


@functools.lru_cache(maxsize=32)
def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
  """float64[n_out, n_in]: torch `interpolate(mode='bicubic', align_corners=False)` along one axis.

  Cubic convolution with A = -0.75; taps outside [0, n_in) are clamped to the border.
  """
  a = -0.75
  scale = n_in / n_out
  m = np.zeros((n_out, n_in))
  for i in range(n_out):
    src = (i + 0.5) * scale - 0.5
    base = int(np.floor(src))
    t = src - base
    for offset in (-1, 0, 1, 2):
      d = abs(t - offset)
      if d <= 1:
        w = ((a + 2) * d - (a + 3)) * d * d + 1
      elif d < 2:
        w = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
      else:
        w = 0.0
      m[i, min(max(base + offset, 0), n_in - 1)] += w
  return m


class VisionAttention(nnx.Module):
  """Bidirectional multi-head attention over patches."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    v = config.vision
    dt, pdt = config.compute_dtype, config.weight_dtype
    d = v.hidden_size
    self.num_heads, self.head_dim = v.num_heads, v.head_dim
    mk = functools.partial(layers.Linear, dtype=dt, param_dtype=pdt, rngs=rngs)
    self.q_proj = mk(d, d, axes=("vision_embed", "vision_heads"), use_bias=v.qkv_bias)
    self.k_proj = mk(d, d, axes=("vision_embed", "vision_heads"), use_bias=v.qkv_bias)
    self.v_proj = mk(d, d, axes=("vision_embed", "vision_heads"), use_bias=v.qkv_bias)
    self.projection_layer = mk(d, d, axes=("vision_heads", "vision_embed"), use_bias=True)
    if v.qk_norm:
      norm = functools.partial(layers.RMSNorm, d, axis_name="vision_heads", eps=1e-6, dtype=dt,
                               param_dtype=pdt)
      self.q_norm, self.k_norm = norm(), norm()
    else:
      self.q_norm = self.k_norm = None

  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """float[N, T, D] (mask: None or bool[N, 1, T], False = padding key) -> float[N, T, D]."""
    n, t, _ = x.shape
    q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
    if self.q_norm is not None:
      q, k = self.q_norm(q), self.k_norm(k)
    heads = (part.BATCH, part.LENGTH, part.HEADS, None)
    split = lambda y: part.constrain(y.reshape(n, t, self.num_heads, self.head_dim), heads)  # noqa: E731
    out = layers.attention(split(q), split(k), split(v), mask, self.head_dim ** -0.5)
    out = part.constrain(out.reshape(n, t, -1), (part.BATCH, part.LENGTH, part.HEADS))
    return part.constrain(self.projection_layer(out), part.RESIDUAL)


class VisionMLP(nnx.Module):

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    v = config.vision
    mk = functools.partial(layers.Linear, dtype=config.compute_dtype,
                           param_dtype=config.weight_dtype, rngs=rngs, use_bias=True)
    self.fc1 = mk(v.hidden_size, v.intermediate_size, axes=("vision_embed", "vision_mlp"))
    self.fc2 = mk(v.intermediate_size, v.hidden_size, axes=("vision_mlp", "vision_embed"))
    self.act = layers.activation(v.hidden_act)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = part.constrain(self.act(self.fc1(x)), (part.BATCH, part.LENGTH, part.MLP))
    return part.constrain(self.fc2(h), part.RESIDUAL)


class VisionLayer(nnx.Module):
  """x + l1 * attn(norm(x)); then + l2 * mlp(norm(.))."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    v = config.vision
    dt, pdt = config.compute_dtype, config.weight_dtype
    norm = functools.partial(layers.make_norm, v.norm_type, v.hidden_size,
                             axis_name="vision_embed", eps=v.norm_eps, dtype=dt, param_dtype=pdt)
    self.attention = VisionAttention(config, rngs)
    self.mlp = VisionMLP(config, rngs)
    self.layernorm_before = norm()
    self.layernorm_after = norm()
    scale = functools.partial(layers.param, None, (v.hidden_size,), ("vision_embed",), pdt,
                              "constant", v.layer_scale_init)
    self.lambda_1 = scale()
    self.lambda_2 = scale()
    self.dtype = dt

  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    x = part.constrain(x, part.RESIDUAL)
    x = x + self.lambda_1[...].astype(self.dtype) * self.attention(self.layernorm_before(x), mask)
    x = part.constrain(x, part.RESIDUAL)
    return part.constrain(
        x + self.lambda_2[...].astype(self.dtype) * self.mlp(self.layernorm_after(x)),
        part.RESIDUAL)


class VisionTower(nnx.Module):
  """Pixels float[N, 3, H, W] -> patch features float[N, 1 + h*w, D] (class token first)."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    v = config.vision
    dt, pdt = config.compute_dtype, config.weight_dtype
    self.config = config
    p, d = v.patch_size, v.hidden_size
    grid = v.image_size // p
    self.patch_embedding = layers.Linear(3 * p * p, d, axes=("vision_patch", "vision_embed"),
                                         use_bias=True, dtype=dt, param_dtype=pdt, rngs=rngs)
    self.cls_token = layers.param(rngs, (1, 1, d), (None, None, "vision_embed"), pdt)
    self.position_embeddings = layers.param(rngs, (1, grid * grid + 1, d),
                                            (None, "vision_pos", "vision_embed"), pdt)
    made = [VisionLayer(config, rngs) for _ in range(v.num_layers)]
    # scan_layers: one VisionLayer whose variables are stacked [num_layers, ...].
    self.layers = layers.stack_layers(made) if config.scan_layers else nnx.List(made)
    self.layernorm = (None if v.use_mean_pooling else
                      layers.make_norm("layer_norm", d, axis_name="vision_embed", eps=v.norm_eps,
                                       dtype=dt, param_dtype=pdt))

  def position_table(self, grid: int) -> jax.Array:
    """float[1, 1 + grid^2, D]: the stored table, bicubic-resized to a grid x grid patch grid."""
    table = self.position_embeddings[...].astype(jnp.float32)
    stored = round((table.shape[1] - 1) ** 0.5)
    if stored == grid:
      return table
    m = jnp.asarray(bicubic_matrix(stored, grid), jnp.float32)
    patches = table[0, 1:].reshape(stored, stored, -1)
    resized = jnp.einsum("ia,jb,abd->ijd", m, m, patches, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([table[:, :1], resized.reshape(1, grid * grid, -1)], axis=1)

  def _patches(self, pixel_values: jax.Array) -> jax.Array:
    """float[N, 3, H, W] -> patch vectors float[N, h*w, 3*P*P] in raster order."""
    n, c, hgt, wid = pixel_values.shape
    p = self.config.vision.patch_size
    if c != 3 or hgt != wid or hgt % p:
      raise ValueError(f"pixel_values: expected float[N, 3, H, H] with H a multiple of {p}, "
                       f"got shape {pixel_values.shape}")
    g = hgt // p
    # Patch vectors ordered (channel, row, column), matching a flattened torch Conv2d kernel.
    x = pixel_values.astype(self.config.compute_dtype).reshape(n, c, g, p, g, p)
    return x.transpose(0, 2, 4, 1, 3, 5).reshape(n, g * g, c * p * p)

  def _embed(self, patches: jax.Array, positions: jax.Array) -> jax.Array:
    """float[N, M, 3*P*P] patches with float[1 or N, 1 + M, D] positions -> float[N, 1 + M, D]."""
    n = patches.shape[0]
    x = part.constrain(patches, (part.BATCH, part.LENGTH, None))
    x = part.constrain(self.patch_embedding(x), part.RESIDUAL)
    cls = jnp.broadcast_to(self.cls_token[...].astype(x.dtype), (n, 1, x.shape[-1]))
    x = jnp.concatenate([cls, x], axis=1)
    return part.constrain(x + positions.astype(x.dtype), part.RESIDUAL)

  def embed(self, pixel_values: jax.Array) -> jax.Array:
    """float[N, 3, H, W] -> float[N, 1 + h*w, D] (patch embedding + class token + positions)."""
    g = pixel_values.shape[-1] // self.config.vision.patch_size
    return self._embed(self._patches(pixel_values), self.position_table(g))

  def _layers(self, x: jax.Array, *mask: jax.Array) -> jax.Array:
    c = self.config
    remat = c.remat if c.vision_remat is None else c.vision_remat
    if c.scan_layers:
      x = layers.scan_layers(self.layers, remat, x, *mask)
    else:
      for layer in self.layers:
        x = layers.call_layer(layer, remat, x, *mask)
    return part.constrain(x if self.layernorm is None else self.layernorm(x), part.RESIDUAL)

  def __call__(self, pixel_values: jax.Array) -> jax.Array:
    return self._layers(self.embed(pixel_values))

  def sparse(self, pixel_values: jax.Array, patch_index: jax.Array, patch_valid: jax.Array
             ) -> jax.Array:
    """The tower on a subset of each image's patches: float[N, 1 + M, D] (class token first).

    Args:
      pixel_values: float[N, 3, H, W].
      patch_index: int[N, M] raster indices of the patches to keep, in the order wanted.
      patch_valid: bool[N, M]; False marks padding, which no token attends to (its own
        output is computed but meaningless).

    Only the kept patches are embedded and run; each keeps its own (interpolated) position
    embedding, so with every patch kept in raster order this is `__call__`.
    """
    g = pixel_values.shape[-1] // self.config.vision.patch_size
    patches = jnp.take_along_axis(self._patches(pixel_values), patch_index[..., None], axis=1)
    table = self.position_table(g)
    pos = jnp.take(table[0, 1:], patch_index, axis=0)  # [N, M, D]
    pos = jnp.concatenate([jnp.broadcast_to(table[:, :1], (pos.shape[0], 1, pos.shape[-1])), pos],
                          axis=1)
    keys = jnp.concatenate([jnp.ones_like(patch_valid[:, :1]), patch_valid], axis=1)
    return self._layers(self._embed(patches, pos), keys.astype(bool)[:, None, :])


def select_cells(pixel_values: jax.Array, cell: int, k: int, threshold: float
                 ) -> tuple[jax.Array, jax.Array]:
  """The K most intense cell x cell squares of each image, in raster order.

  Args:
    pixel_values: float[N, C, H, W] with H, W multiples of `cell`.
    cell: side in pixels of a cell (patch * shuffle factor: one visual token).
    k: cells kept per image.
    threshold: a cell is foreground when its summed intensity exceeds this.

  Returns:
    (int32[N, K] cell indices (row-major over the cell grid), bool[N, K] foreground). The
    foreground cells come first in raster order; when an image has fewer than K of them the
    rest are background cells (raster order too), marked False. Scores carry no gradient.
  """
  n, c, hgt, wid = pixel_values.shape
  if hgt % cell or wid % cell:
    raise ValueError(f"pixel_values: shape {pixel_values.shape} is not a multiple of the "
                     f"{cell}-pixel cell")
  a, b = hgt // cell, wid // cell
  score = jax.lax.stop_gradient(pixel_values).astype(jnp.float32).reshape(n, c, a, cell, b, cell)
  score = score.sum(axis=(1, 3, 5)).reshape(n, a * b)
  top, idx = jax.lax.top_k(score, k)
  # One sort puts the foreground first and each group in raster order.
  key = jnp.sort(jnp.where(top > threshold, idx, idx + a * b), axis=1)
  return (key % (a * b)).astype(jnp.int32), key < a * b


def cell_patches(cells: jax.Array, grid: int, factor: int) -> jax.Array:
  """int[N, K] cell indices -> int[N, K * f * f] patch indices on a grid x grid patch grid.

  Within a cell the f x f patches come row-major, the element order of `pixel_shuffle`, so
  the tower's outputs reshaped to [N, K, f*f*D] are the shuffled tokens of those cells.
  """
  per_row = grid // factor
  ci, cj = cells // per_row, cells % per_row
  off = jnp.arange(factor)
  rows = ci[..., None, None] * factor + off[:, None]
  cols = cj[..., None, None] * factor + off[None, :]
  return (rows * grid + cols).reshape(cells.shape[0], -1)


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """float[N, a, b, D] -> float[N, a/f, b/f, D*f*f] in transformers' (v2) element order."""
  n, a, b, d = x.shape
  x = x.reshape(n, a, b // factor, d * factor).transpose(0, 2, 1, 3)
  x = x.reshape(n, b // factor, a // factor, d * factor * factor)
  return x.transpose(0, 2, 1, 3)


class Projector(nnx.Module):
  """LayerNorm(4D) -> Linear(4D, E) -> GELU -> Linear(E, E)."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    dt, pdt = config.compute_dtype, config.weight_dtype
    d_in = config.vision.hidden_size * config.shuffle_factor ** 2
    e = config.text.hidden_size
    self.layer_norm = layers.LayerNorm(d_in, axis_name="projector_in",
                                       eps=config.projector_norm_eps, dtype=dt, param_dtype=pdt)
    mk = functools.partial(layers.Linear, use_bias=True, dtype=dt, param_dtype=pdt, rngs=rngs)
    self.linear_1 = mk(d_in, e, axes=("projector_in", "projector_hidden"))
    self.linear_2 = mk(e, e, axes=("projector_hidden", "embed"))
    self.act = layers.activation(config.projector_hidden_act)

  def __call__(self, x: jax.Array) -> jax.Array:
    """float[N, T, 4D] -> float[N, T, E]."""
    # Pinned before the norm: its FSDP-split scale would otherwise split the width.
    x = part.constrain(x, part.RESIDUAL)
    h = part.constrain(self.act(self.linear_1(self.layer_norm(x))),
                       (part.BATCH, part.LENGTH, part.MLP))
    return part.constrain(self.linear_2(h), part.RESIDUAL)
