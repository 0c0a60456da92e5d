"""Released DrAction checkpoints (format 'skeletonllm-draction-v1') <-> our weights pytree.

The release stores PyTorch `nn.Linear` layers (`weight [out, in]`), trained
tensors in bfloat16 or float32 and float32 buffers. Conversion is a table of
(source key, target path, transform); every tensor's shape is checked and the
loader fails listing every unknown source key and every missing target.
bfloat16 -> float32 is exact, so upcasting needs no rounding choice.

Cross-topology transfer (docs/method.md §2): the appearance MLP, NFM and depth mix
are shared; the per-Gaussian features are resampled separately for the joint
bank (J rows) and the bone bank (bone samples, one sequence per bone) by
linear interpolation to the new counts.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from skel_llm.render import layout as layout_lib
from skel_llm.skeleton import topology as topology_lib

FORMAT = "skeletonllm-draction-v1"

# (source key, target path, transpose?) for the trained tensors.
_PARAM_TABLE = (
    ("canonical_features", ("params", "features"), False),
    ("appearance_head.0.weight", ("params", "appearance", "w0"), True),
    ("appearance_head.0.bias", ("params", "appearance", "b0"), False),
    ("appearance_head.2.weight", ("params", "appearance", "w1"), True),
    ("appearance_head.2.bias", ("params", "appearance", "b1"), False),
    ("nfm.0.weight", ("params", "nfm", "w0"), True),
    ("nfm.0.bias", ("params", "nfm", "b0"), False),
    ("nfm.2.weight", ("params", "nfm", "w1"), True),
    ("nfm.2.bias", ("params", "nfm", "b1"), False),
    ("depth_mix_logit", ("params", "depth_mix_logit"), False),
    ("gru.weight_ih_l0", ("params", "gru", "w_i"), True),
    ("gru.weight_hh_l0", ("params", "gru", "w_h"), True),
    ("gru.bias_ih_l0", ("params", "gru", "b_i"), False),
    ("gru.bias_hh_l0", ("params", "gru", "b_h"), False),
)
_BUFFER_TABLE = (
    ("canonical_joints", ("buffers", "canonical_joints"), False),
    ("canonical_means", ("buffers", "canonical_means"), False),
    ("canonical_scales", ("buffers", "scales"), False),
    ("canonical_quats", ("buffers", "quats"), False),
    ("lbs_weights_logits", ("buffers", "blend_logits"), False),
)
# Stored by the release but not used by its renderer (alpha comes from the MLP).
_IGNORED = ("canonical_opacities",)
_REQUIRED = {"canonical_features", "appearance_head.0.weight", "appearance_head.0.bias",
             "appearance_head.2.weight", "appearance_head.2.bias", "depth_mix_logit",
             "canonical_joints", "canonical_means", "canonical_scales", "canonical_quats",
             "lbs_weights_logits"}
_GROUPS = {"nfm": ("nfm.0.weight", "nfm.0.bias", "nfm.2.weight", "nfm.2.bias"),
           "gru": ("gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0")}


_DTYPES = ("F32", "F16", "F64", "BF16")


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  """All tensors of a `.safetensors` file as float32 numpy arrays (`safetensors.safe_open`;
  bfloat16 -> float32 through ml_dtypes is exact)."""
  from safetensors import SafetensorError, safe_open
  try:
    with safe_open(path, framework="np") as f:
      out = {}
      for key in f.keys():
        dtype = f.get_slice(key).get_dtype()
        if dtype not in _DTYPES:
          raise ValueError(f"{path}: tensor {key}: dtype {dtype!r}, expected one of "
                           f"{sorted(_DTYPES)}")
        out[key] = np.asarray(f.get_tensor(key), np.float32)
  except SafetensorError as e:
    raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
  return out


def _put(tree: dict, path: tuple[str, ...], value) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


def _get(tree: dict, path: tuple[str, ...]):
  for name in path:
    tree = tree[name]
  return tree


def metadata_path(path: str) -> str:
  """The `.json` beside a released `.safetensors` (format, NFM flag)."""
  return re.sub(r"\.safetensors$", ".json", os.fspath(path))


def local_release(path: str) -> str:
  """A local path of released renderer `path` (itself when local; a gs:// file is mirrored
  into the cache with its `.json`: `skel_llm.fs.cached_file`)."""
  from skel_llm import fs
  return fs.cached_file(path, (metadata_path(path),))


def _read_metadata(path: str) -> dict:
  meta_path = metadata_path(path)
  if meta_path == path or not os.path.exists(meta_path):
    return {}
  with open(meta_path) as f:
    meta = json.load(f)
  if meta.get("format") != FORMAT:
    raise ValueError(f"{meta_path}: field 'format': expected {FORMAT!r}, got {meta.get('format')!r}")
  return meta


def load_released(path: str | os.PathLike, *, enable_nfm: bool | None = None) -> dict:
  """Renderer weights `{'params', 'buffers'}` (float32 numpy) from a released `.safetensors`.

  Args:
    path: `draction_candidate_0X.safetensors`; a sibling `.json` (if present)
      is checked for the format and tells whether NFM is enabled.
    enable_nfm: override; by default the `.json`'s `enable_nfm`, else whether
      the nfm tensors exist. With NFM disabled the nfm tensors are not loaded.
  """
  path = os.fspath(path)
  tensors = _read_safetensors(path)
  meta = _read_metadata(path)
  if enable_nfm is None:
    enable_nfm = bool(meta.get("enable_nfm", all(k in tensors for k in _GROUPS["nfm"])))
  missing = sorted(_REQUIRED - set(tensors))
  if enable_nfm:
    missing += [k for k in _GROUPS["nfm"] if k not in tensors]
  if missing:
    raise ValueError(f"{path}: missing tensors {missing}")
  known = {k for k, _, _ in _PARAM_TABLE + _BUFFER_TABLE} | set(_IGNORED)
  unknown = sorted(set(tensors) - known)
  if unknown:
    raise ValueError(f"{path}: unknown tensors {unknown} (expected format {FORMAT})")
  has_gru = all(k in tensors for k in _GROUPS["gru"])

  weights: dict = {}
  for key, target, transpose in _PARAM_TABLE + _BUFFER_TABLE:
    if key not in tensors:
      continue
    if key in _GROUPS["nfm"] and not enable_nfm:
      continue
    if key in _GROUPS["gru"] and not (enable_nfm and has_gru):
      continue
    value = tensors[key].T if transpose else tensors[key]
    _put(weights, target, np.array(value, np.float32, order="C"))
  validate(weights, source=path)
  if meta and meta.get("num_gaussians") not in (None, weights["buffers"]["canonical_means"].shape[0]):
    raise ValueError(f"{path}: json num_gaussians {meta['num_gaussians']} does not match the tensors")
  return weights


def validate(weights: dict, source: str = "<weights>") -> None:
  """Check the shapes of a weights pytree against each other; raise naming the field."""
  p, b = weights["params"], weights["buffers"]
  k, j = b["blend_logits"].shape
  feat = p["features"].shape[-1]
  hidden = p["appearance"]["w0"].shape[1]
  expect = {
      ("buffers", "canonical_joints"): (j, 3), ("buffers", "canonical_means"): (k, 3),
      ("buffers", "scales"): (k, 3), ("buffers", "quats"): (k, 4),
      ("params", "features"): (k, feat),
      ("params", "appearance", "w0"): (feat, hidden), ("params", "appearance", "b0"): (hidden,),
      ("params", "appearance", "w1"): (hidden, 4), ("params", "appearance", "b1"): (4,),
      ("params", "depth_mix_logit"): (),
  }
  if "blend_logits" in p:
    expect[("params", "blend_logits")] = (k, j)
  if "nfm" in p:
    nh = p["nfm"]["w0"].shape[1]
    expect.update({("params", "nfm", "w0"): (10, nh), ("params", "nfm", "b0"): (nh,),
                   ("params", "nfm", "w1"): (nh, 5), ("params", "nfm", "b1"): (5,)})
  if "gru" in p:
    expect.update({("params", "gru", "w_i"): (10, 30), ("params", "gru", "w_h"): (10, 30),
                   ("params", "gru", "b_i"): (30,), ("params", "gru", "b_h"): (30,)})
  for path, shape in expect.items():
    got = tuple(np.shape(_get(weights, path)))
    if got != shape:
      raise ValueError(f"{source}: field {'.'.join(path)}: expected shape {shape}, got {got}")


def export_released(weights: dict, path: str | os.PathLike, *, param_dtype: str = "bfloat16",
                    name: str | None = None, topology: str = "ntu25",
                    num_line_samples: int = 10) -> None:
  """Write weights in the release layout (`.safetensors` + `.json` beside it).

  Args:
    weights: `{'params', 'buffers'}`.
    path: target `.safetensors` path.
    param_dtype: 'bfloat16' (as released) or 'float32' for the trained tensors.
  """
  import ml_dtypes
  from safetensors.numpy import save_file

  path = os.fspath(path)
  dtype = {"bfloat16": ml_dtypes.bfloat16, "float32": np.float32}[param_dtype]
  out = {}
  for key, target, transpose in _PARAM_TABLE + _BUFFER_TABLE:
    if target == ("buffers", "blend_logits") and "blend_logits" in weights["params"]:
      target = ("params", "blend_logits")  # trained blend logits: the release holds one set
    try:
      value = np.asarray(_get(weights, target), np.float32)
    except KeyError:
      continue
    value = np.array(value.T if transpose else value, np.float32, order="C")
    out[key] = value.astype(dtype) if target[0] == "params" else value
  k = out["canonical_means"].shape[0]
  out["canonical_opacities"] = np.ones((k, 1), np.float32)
  save_file(out, path)
  meta = {
      "format": FORMAT, "name": name or os.path.splitext(os.path.basename(path))[0],
      "topology": topology, "num_line_samples": num_line_samples,
      "num_joints": int(out["canonical_joints"].shape[0]), "num_gaussians": int(k),
      "feature_dim": int(out["canonical_features"].shape[1]),
      "enable_nfm": "nfm" in weights["params"], "tensor_count": len(out),
      "tensors": {key: list(v.shape) for key, v in sorted(out.items())},
  }
  with open(re.sub(r"\.safetensors$", "", path) + ".json", "w") as f:
    json.dump(meta, f, indent=2)


def _resample(rows: np.ndarray, count: int) -> np.ndarray:
  """Linear interpolation of float[m, F] rows to float[count, F] (ends kept)."""
  m = rows.shape[0]
  if count == 0:
    return np.zeros((0, rows.shape[1]), rows.dtype)
  if m == 1:
    return np.repeat(rows, count, axis=0)
  src = np.linspace(0.0, 1.0, m)
  dst = np.linspace(0.0, 1.0, count)
  return np.stack([np.interp(dst, src, rows[:, c]) for c in range(rows.shape[1])], axis=1)


def transfer(weights: dict, target: layout_lib.GaussianLayout,
             source_samples_per_bone: tuple[int, ...] | None = None) -> dict:
  """Weights for another topology: shared MLPs, resampled per-Gaussian features.

  The joint bank (first J_src rows) is interpolated to the target's J joints;
  the bone bank (the rest, `source_samples_per_bone` rows per bone, 10 each by
  default) is flattened to one sequence of bone samples, interpolated to the
  target's total bone-sample count and laid out bone by bone again.

  Args:
    weights: source `{'params', 'buffers'}`.
    target: the target layout (its buffers replace the source's).
    source_samples_per_bone: n_b of the source layout.
  """
  feats = np.asarray(weights["params"]["features"], np.float32)
  j_src = np.shape(weights["buffers"]["canonical_joints"])[0]
  bones_src = feats[j_src:]
  if source_samples_per_bone is None:
    if bones_src.shape[0] % 10:
      raise ValueError(f"cannot infer source samples per bone from {bones_src.shape[0]} bone rows")
    source_samples_per_bone = (10,) * (bones_src.shape[0] // 10)
  if sum(source_samples_per_bone) != bones_src.shape[0]:
    raise ValueError(f"source samples per bone sum to {sum(source_samples_per_bone)}, "
                     f"features have {bones_src.shape[0]} bone rows")
  joint_bank = _resample(feats[:j_src], target.num_joints)
  bone_bank = _resample(bones_src, sum(target.samples_per_bone))
  params = dict(weights["params"])
  # Trained blend logits belong to the source's Gaussians and joints; the target draws with
  # its layout's (the `uniform` / `learnable` ablations transfer their appearance only).
  params.pop("blend_logits", None)
  params["features"] = np.concatenate([joint_bank, bone_bank]).astype(np.float32)
  buffers = {k: np.asarray(v, np.float32) for k, v in target.buffers().items()}
  out = {"params": params, "buffers": buffers}
  validate(out, source=f"transfer to {target.topology}")
  return out


def target_layout(topology, blend: str = "topology") -> layout_lib.GaussianLayout:
  """The layout a transfer to `topology` (a registry name or a `Topology`, e.g. a BVH file's
  own) renders with: the authors' SMPL-22 setting (bone-length-proportional samples, gamma 0,
  joint 0.026 m, bone 0.016 m), 10 samples per bone with the default radii for every other
  topology. A skeleton without bones cannot take the renderer's bone bank: ValueError.
  `blend`: the source's blend rule; a fixed rule (`distance`) is applied to the target's
  skeleton, a trained one (`uniform`, `learnable`) gives the target the topology weights."""
  topo = topology if isinstance(topology, topology_lib.Topology) else topology_lib.get(topology)
  if topo.num_bones == 0:
    raise ValueError(f"topology {topo.name!r} ({topo.num_joints} joint(s)) has no bones: the "
                     f"renderer's bone bank (Gaussians along each bone) has nothing to be "
                     f"transferred to, so DrAction cannot draw this skeleton")
  rule = "topology" if blend in layout_lib.LEARNED_BLEND_RULES else blend
  if topo.name == "smpl22":
    return layout_lib.build_layout(topo, samples_per_bone="proportional", gamma=0.0,
                                   joint_radius=0.026, bone_radius=0.016, blend=rule)
  return layout_lib.build_layout(topo, samples_per_bone=10, blend=rule)


def transfer_to(weights: dict, topology,
                source_samples_per_bone: tuple[int, ...] | None = None,
                blend: str = "topology") -> dict:
  """`transfer(weights, target_layout(topology, blend), source_samples_per_bone)`."""
  return transfer(weights, target_layout(topology, blend), source_samples_per_bone)
