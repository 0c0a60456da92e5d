"""`DrAction`: the renderer as a Flax NNX module (trainable `nnx.Param`, fixed `Buffer`s).

Glossary: B clips, n frames, P persons, J joints, K Gaussians per person,
S image side.

The module only holds state; the maths is `skel_llm.render.renderer` on the
pytree returned by `weights()`. For training, split once and merge inside the
jitted step (see the package docstring):

    graphdef, params, buffers = nnx.split(model, nnx.Param, Buffer)
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skel_llm.render import checkpoint, layout as layout_lib, raster, renderer
from skel_llm.skeleton import topology as topology_lib


class Buffer(nnx.Variable):
  """A fixed renderer buffer (canonical means, radii, blend logits): never trained."""


def _torch_linear_init(rngs: nnx.Rngs, fan_in: int, fan_out: int):
  """PyTorch nn.Linear's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  w = jax.random.uniform(rngs.params(), (fan_in, fan_out), jnp.float32, -bound, bound)
  b = jax.random.uniform(rngs.params(), (fan_out,), jnp.float32, -bound, bound)
  return w, b


class MLP(nnx.Module):
  """Two-layer ReLU MLP, kernels float32[in, out] (the transpose of torch's Linear)."""

  def __init__(self, din: int, hidden: int, dout: int, *, rngs: nnx.Rngs):
    w0, b0 = _torch_linear_init(rngs, din, hidden)
    w1, b1 = _torch_linear_init(rngs, hidden, dout)
    self.w0, self.b0, self.w1, self.b1 = nnx.Param(w0), nnx.Param(b0), nnx.Param(w1), nnx.Param(b1)

  def tree(self) -> dict:
    return {"w0": self.w0[...], "b0": self.b0[...], "w1": self.w1[...], "b1": self.b1[...]}


class GRU(nnx.Module):
  """GRU cell weights (gates r, z, n), run over frames by `renderer._gru`."""

  def __init__(self, din: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / math.sqrt(hidden)
    u = lambda shape: jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound)  # noqa: E731
    self.w_i, self.w_h = nnx.Param(u((din, 3 * hidden))), nnx.Param(u((hidden, 3 * hidden)))
    self.b_i, self.b_h = nnx.Param(u((3 * hidden,))), nnx.Param(u((3 * hidden,)))

  def tree(self) -> dict:
    return {"w_i": self.w_i[...], "w_h": self.w_h[...], "b_i": self.b_i[...], "b_h": self.b_h[...]}


class DrAction(nnx.Module):
  """The DrAction renderer of one topology.

  Call it on one clip `float32[n, P, J, 3]` or a batch `float32[B, n, P, J, 3]`
  of already-selected poses and velocities; it returns frames in [0, 1].
  """

  def __init__(self, topology: str = "ntu25", *, num_persons: int = 2, enable_nfm: bool = True,
               enable_gru: bool = False, samples_per_bone: int | str = 10, feature_dim: int = 3,
               hidden: int = 64, nfm_hidden: int = 64, depth_mix_init: float = -0.5,
               feature_init_std: float = 0.1, layout: layout_lib.GaussianLayout | None = None,
               blend: str = "topology", rngs: nnx.Rngs, **layout_kwargs):
    """
    Args:
      topology: registry name (ignored when `layout` is given).
      num_persons: the largest P accepted (the layout is shared by all persons).
      enable_nfm: use the motion modulator (NFM).
      enable_gru: run a 10->10 GRU over frames on the NFM input (needs NFM).
      samples_per_bone: int or 'proportional' (see `layout.build_layout`).
      feature_dim, hidden, nfm_hidden: widths (3, 64, 64 in the release).
      depth_mix_init: initial depth-colour logit.
      layout: a prebuilt `GaussianLayout`; default `build_layout(topology, ...)`.
      blend: blend rule (`layout.BLEND_RULES`): `topology` (the method) and `distance` keep
        the layout's logits as a buffer; `uniform` and `learnable` train them (a parameter
        `blend`, started from the rule's logits; the buffer keeps the starting values).
      rngs: initialisation randomness.
      **layout_kwargs: more `build_layout` options (rest_pose, gamma, radii).
    """
    if enable_gru and not enable_nfm:
      raise ValueError("enable_gru needs enable_nfm (the GRU runs on the NFM input)")
    if blend not in layout_lib.BLEND_RULES:
      raise ValueError(f"blend must be one of {layout_lib.BLEND_RULES}, got {blend!r}")
    lay = layout or layout_lib.build_layout(topology, samples_per_bone=samples_per_bone,
                                            blend=blend, **layout_kwargs)
    self.topology = lay.topology
    self.num_persons = num_persons
    self.samples_per_bone = lay.samples_per_bone
    k = lay.num_gaussians
    self.features = nnx.Param(feature_init_std * jax.random.normal(rngs.params(), (k, feature_dim)))
    self.appearance = MLP(feature_dim, hidden, 4, rngs=rngs)
    self.nfm = MLP(10, nfm_hidden, 5, rngs=rngs) if enable_nfm else None
    self.gru = GRU(10, 10, rngs=rngs) if enable_gru else None
    self.depth_mix_logit = nnx.Param(jnp.asarray(depth_mix_init, jnp.float32))
    self.blend_rule = blend
    self.blend = (nnx.Param(jnp.asarray(lay.blend_logits, jnp.float32))
                  if blend in layout_lib.LEARNED_BLEND_RULES else None)
    for name, value in lay.buffers().items():
      setattr(self, name, Buffer(jnp.asarray(value, jnp.float32)))

  @classmethod
  def from_released(cls, path: str | os.PathLike, *, rngs: nnx.Rngs | None = None,
                    topology: str = "ntu25", enable_nfm: bool | None = None) -> "DrAction":
    """A module holding a released checkpoint (`draction_candidate_0X.safetensors`)."""
    weights = checkpoint.load_released(path, enable_nfm=enable_nfm)
    return cls.from_weights(weights, topology=topology, rngs=rngs)

  @classmethod
  def from_weights(cls, weights: dict, *, topology: str = "ntu25",
                   rngs: nnx.Rngs | None = None, num_persons: int = 2) -> "DrAction":
    """A module holding a `{'params', 'buffers'}` pytree (e.g. from `checkpoint.transfer`)."""
    p = weights["params"]
    lay = _layout_from_buffers(weights, topology)
    model = cls(topology, num_persons=num_persons, enable_nfm="nfm" in p, enable_gru="gru" in p,
                blend="learnable" if "blend_logits" in p else "topology",
                feature_dim=np.shape(p["features"])[1], hidden=np.shape(p["appearance"]["w0"])[1],
                nfm_hidden=np.shape(p["nfm"]["w0"])[1] if "nfm" in p else 64,
                layout=lay, rngs=rngs or nnx.Rngs(0))
    model.load_weights(weights)
    return model

  def load_weights(self, weights: dict) -> None:
    """Copy a `{'params', 'buffers'}` pytree into this module (shapes must match)."""
    checkpoint.validate(weights)
    p, b = weights["params"], weights["buffers"]

    def put(var, value, name):
      value = jnp.asarray(value, jnp.float32)
      if var[...].shape != value.shape:
        raise ValueError(f"field {name}: expected shape {var[...].shape}, got {value.shape}")
      var[...] = value

    put(self.features, p["features"], "params.features")
    put(self.depth_mix_logit, p["depth_mix_logit"], "params.depth_mix_logit")
    if (self.blend is None) != ("blend_logits" not in p):
      raise ValueError(f"field params.blend_logits: the module's blend rule {self.blend_rule!r} "
                       f"{'trains' if self.blend is not None else 'does not train'} blend "
                       f"logits but the weights {'lack' if self.blend is not None else 'have'} "
                       f"them")
    if self.blend is not None:
      put(self.blend, p["blend_logits"], "params.blend_logits")
    for group, mod in (("appearance", self.appearance), ("nfm", self.nfm), ("gru", self.gru)):
      if (mod is None) != (group not in p):
        raise ValueError(f"field params.{group}: module has {'no ' if mod is None else ''}{group}")
      if mod is not None:
        for key, value in p[group].items():
          put(getattr(mod, key), value, f"params.{group}.{key}")
    for key, value in b.items():
      put(getattr(self, key), value, f"buffers.{key}")

  def weights(self) -> dict:
    """The `{'params', 'buffers'}` pytree the pure functions of `renderer` take."""
    params = {"features": self.features[...], "appearance": self.appearance.tree(),
              "depth_mix_logit": self.depth_mix_logit[...]}
    if self.nfm is not None:
      params["nfm"] = self.nfm.tree()
    if self.gru is not None:
      params["gru"] = self.gru.tree()
    if self.blend is not None:
      params["blend_logits"] = self.blend[...]
    buffers = {k: getattr(self, k)[...] for k in
               ("canonical_joints", "canonical_means", "scales", "quats", "blend_logits")}
    return {"params": params, "buffers": buffers}

  def __call__(self, poses: jax.Array, vels: jax.Array, *, image_size: int,
               fov_deg: float = 60.0, dense: bool = False, with_stats: bool = False,
               tile: int = raster.DEFAULT_TILE, capacity: int | None = None):
    """Frames float32[n, S, S, 3] (or [B, n, S, S, 3] for batched input).

    Args:
      poses: float32[n, P, J, 3] or float32[B, n, P, J, 3]; absent persons all zeros.
      vels: same shape as poses.
      image_size: S. fov_deg: camera field of view. dense: exact slow path.
      with_stats: also return (overflow, pairs) int32[(B,) n] of the tiled path.
      tile, capacity: tiled-path settings (`raster.composite_tiled`).
    """
    if poses.shape[-3] > self.num_persons:
      raise ValueError(f"got {poses.shape[-3]} persons, the renderer holds {self.num_persons}")
    kwargs = dict(image_size=image_size, fov_deg=fov_deg, dense=dense, tile=tile,
                  capacity=capacity)
    w = self.weights()
    if poses.ndim == 5:
      out = renderer.render_batch(w, poses, vels, **kwargs)
    elif poses.ndim == 4:
      out = renderer.render_with_stats(w, poses, vels, **kwargs)
    else:
      raise ValueError(f"poses must be [n, P, J, 3] or [B, n, P, J, 3], got {poses.shape}")
    return out if with_stats else out[0]


def _layout_from_buffers(weights: dict, topology: str) -> layout_lib.GaussianLayout:
  """A layout view of loaded buffers; samples per bone are inferred when uniform, else ()."""
  b = weights["buffers"]
  k, j = np.shape(b["blend_logits"])
  topo = topology_lib.get(topology)
  if j != topo.num_joints:
    raise ValueError(f"weights have {j} joints, topology {topology} has {topo.num_joints}")
  bones = max(topo.num_bones, 1)
  if (k - j) % bones == 0:
    counts = ((k - j) // bones,) * topo.num_bones
    _, fractions, bone_of = layout_lib.blend_weights(topo, counts)
  else:
    counts, fractions, bone_of = (), np.zeros(k, np.float32), np.full(k, -1, np.int32)
  return layout_lib.GaussianLayout(
      topology=topology, samples_per_bone=counts,
      canonical_joints=np.asarray(b["canonical_joints"]),
      canonical_means=np.asarray(b["canonical_means"]), scales=np.asarray(b["scales"]),
      quats=np.asarray(b["quats"]), blend_logits=np.asarray(b["blend_logits"]),
      fractions=fractions, bone_of=bone_of)
