"""Gaussian layout of one person: which Gaussians exist, where they sit, how big they are.

Glossary: J joints, K Gaussians per person, F feature width.

Per person the layout has one Gaussian per joint (first J rows, in joint
order), then `n_b` Gaussians on each bone b at fractions s / (n_b + 1),
s = 1..n_b, bone by bone in the topology's bone order. The released DrAction
checkpoints use n_b = 10 for every NTU bone (K = 25 + 240 = 265); for SMPL-22
the authors used a bone-length-proportional count in 2..24 (docs/method.md §2).

Geometry follows the joints through fixed blend weights: a joint Gaussian is
one-hot on its joint, a bone sample at fraction a weighs (1 - a, a) on the
bone's endpoints. They are stored as logits (`log w`, -1e4 for w = 0) so that
`softmax(logits)` reproduces them exactly, the convention of the checkpoints.

Ablation rules (`BLEND_RULES`, ours: the paper names the comparison, not the rules):
`topology` is the above (the method); `distance` is a fixed Gaussian kernel over the
skeleton graph, w_kj ~ exp(-d_kj^2 / 2), d_kj the distance in bones from Gaussian k's
place (a joint, or fraction a along a bone) to joint j, so every Gaussian also follows its
neighbours; `uniform` starts every Gaussian at equal weight on every joint (logits 0).
`uniform` and `learnable` (which starts from `topology`) are trained by the renderer
(`skel_llm.render.DrAction`, `blend=`); the layout only holds their starting logits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skel_llm.skeleton import topology as topology_lib

# A logit this negative has softmax weight exactly 0 in float32.
_NEG_LOGIT = -1.0e4


@dataclasses.dataclass(frozen=True)
class GaussianLayout:
  """Fixed (non-trained) per-person Gaussian buffers of one topology.

  Attributes:
    topology: registry name of the topology.
    samples_per_bone: n_b per bone, in bone order.
    canonical_joints: float32[J, 3] rest pose the canonical means refer to.
    canonical_means: float32[K, 3] Gaussian centres in the rest pose.
    scales: float32[K, 3] per-axis standard deviations in metres.
    quats: float32[K, 4] (w, x, y, z) rotations of the covariance.
    blend_logits: float32[K, J]; `softmax` over J gives the blend weights.
    fractions: float32[K] position along the bone (0 for joint Gaussians).
    bone_of: int32[K] bone index of a bone sample, -1 for a joint Gaussian.
  """

  topology: str
  samples_per_bone: tuple[int, ...]
  canonical_joints: np.ndarray
  canonical_means: np.ndarray
  scales: np.ndarray
  quats: np.ndarray
  blend_logits: np.ndarray
  fractions: np.ndarray
  bone_of: np.ndarray

  @property
  def num_joints(self) -> int:
    return self.canonical_joints.shape[0]

  @property
  def num_gaussians(self) -> int:
    return self.canonical_means.shape[0]

  def buffers(self) -> dict[str, np.ndarray]:
    """The renderer's fixed buffers (see `skel_llm.render.renderer`)."""
    return {
        "canonical_joints": self.canonical_joints,
        "canonical_means": self.canonical_means,
        "scales": self.scales,
        "quats": self.quats,
        "blend_logits": self.blend_logits,
    }


def blend_weights(topo: topology_lib.Topology, samples_per_bone) -> tuple[np.ndarray, ...]:
  """(weights float32[K, J], fractions float32[K], bone_of int32[K]) of the layout."""
  j = topo.num_joints
  rows, fractions, bone_of = [], [], []
  for i in range(j):
    row = np.zeros(j, np.float64)
    row[i] = 1.0
    rows.append(row)
    fractions.append(0.0)
    bone_of.append(-1)
  for b, ((p, c), n) in enumerate(zip(topo.bones, samples_per_bone)):
    for s in range(1, n + 1):
      a = s / (n + 1)
      row = np.zeros(j, np.float64)
      row[p] = 1.0 - a
      row[c] = a
      rows.append(row)
      fractions.append(a)
      bone_of.append(b)
  return (np.asarray(rows, np.float32), np.asarray(fractions, np.float32),
          np.asarray(bone_of, np.int32))


BLEND_RULES = ("topology", "distance", "uniform", "learnable")
# Which rules train the blend logits (the others keep them as fixed buffers).
LEARNED_BLEND_RULES = ("uniform", "learnable")


def graph_hops(topo: topology_lib.Topology) -> np.ndarray:
  """float64[J, J] shortest path lengths in bones (inf between unconnected joints)."""
  j = topo.num_joints
  d = np.full((j, j), np.inf)
  np.fill_diagonal(d, 0.0)
  for a, b in topo.bones:
    d[a, b] = d[b, a] = 1.0
  for m in range(j):  # Floyd-Warshall: J <= a few dozen joints
    d = np.minimum(d, d[:, m:m + 1] + d[m:m + 1, :])
  return d


def rule_logits(topo: topology_lib.Topology, samples_per_bone, rule: str) -> np.ndarray:
  """float32[K, J] starting blend logits of the layout under an ablation `rule`."""
  if rule not in BLEND_RULES:
    raise ValueError(f"blend rule must be one of {BLEND_RULES}, got {rule!r}")
  weights, fractions, bone_of = blend_weights(topo, samples_per_bone)
  if rule in ("topology", "learnable"):
    return weights_to_logits(weights)
  if rule == "uniform":
    return np.zeros(weights.shape, np.float32)
  hops = graph_hops(topo)
  dist = np.empty(weights.shape, np.float64)
  dist[:topo.num_joints] = hops
  for k in range(topo.num_joints, len(weights)):
    p, c = topo.bones[bone_of[k]]
    a = float(fractions[k])
    dist[k] = np.minimum(a + hops[p], (1.0 - a) + hops[c])
  logits = np.where(np.isfinite(dist), -0.5 * dist**2, _NEG_LOGIT)
  return logits.astype(np.float32)


def weights_to_logits(weights: np.ndarray) -> np.ndarray:
  """float32[K, J] logits whose softmax is `weights` (rows must sum to 1)."""
  weights = np.asarray(weights, np.float64)
  return np.where(weights > 0, np.log(np.maximum(weights, 1e-300)), _NEG_LOGIT).astype(np.float32)


def bone_lengths(topo: topology_lib.Topology, rest_pose: np.ndarray | None) -> np.ndarray:
  """float64[|bones|] bone lengths of a rest pose (all 1 when none is given)."""
  if rest_pose is None:
    return np.ones(topo.num_bones)
  rest = np.asarray(rest_pose, np.float64)
  if rest.shape != (topo.num_joints, 3):
    raise ValueError(f"rest pose for {topo.name} must be [{topo.num_joints}, 3], got {rest.shape}")
  return np.array([np.linalg.norm(rest[a] - rest[b]) for a, b in topo.bones])


def proportional_samples(lengths: np.ndarray, *, min_samples: int = 2,
                         max_samples: int = 24) -> tuple[int, ...]:
  """Bone-length-proportional counts: round(max_samples * L / Lmax) clipped to the range."""
  lmax = max(float(np.max(lengths)), 1e-12)
  n = np.clip(np.round(max_samples * np.asarray(lengths) / lmax), min_samples, max_samples)
  return tuple(int(v) for v in n)


def build_layout(topology: str | topology_lib.Topology, *, samples_per_bone: int | str = 10,
                 rest_pose: np.ndarray | None = None, gamma: float = 1.0,
                 joint_radius: float = 0.030, joint_radius_range=(0.010, 0.035),
                 bone_radius: float = 0.020, bone_radius_range=(0.006, 0.030),
                 min_samples: int = 2, max_samples: int = 24,
                 blend: str = "topology") -> GaussianLayout:
  """The Gaussian layout of a registry topology.

  Radii follow docs/method.md §2: with L a bone length and Lmax the longest bone,
  a bone sample has `bone_radius * (L / Lmax) ** gamma` clipped to
  `bone_radius_range`; a joint uses the median length of its adjacent bones
  with `joint_radius` and `joint_radius_range`. gamma = 0 gives constant radii
  (the authors' SMPL-22 setting: gamma 0, joint 0.026, bone 0.016).

  Args:
    topology: a registry name or a `Topology`.
    samples_per_bone: an int (same count on every bone) or 'proportional'
      (`proportional_samples` between min_samples and max_samples).
    blend: the blend rule (`BLEND_RULES`) giving `blend_logits`; the canonical means are
      the rest pose blended with the rule's starting weights.
    rest_pose: float[J, 3] pose giving bone lengths and the canonical joints;
      None: unit bone lengths and a zero rest pose (only the differences
      `canonical_means - W canonical_joints` matter to the geometry, and they
      are zero by construction).
  """
  topo = topology if isinstance(topology, topology_lib.Topology) else topology_lib.get(topology)
  lengths = bone_lengths(topo, rest_pose)
  if isinstance(samples_per_bone, str):
    if samples_per_bone != "proportional":
      raise ValueError(f"samples_per_bone must be an int or 'proportional', got {samples_per_bone!r}")
    counts = proportional_samples(lengths, min_samples=min_samples, max_samples=max_samples)
  else:
    if samples_per_bone < 0:
      raise ValueError(f"samples_per_bone must be >= 0, got {samples_per_bone}")
    counts = (int(samples_per_bone),) * topo.num_bones
  weights, fractions, bone_of = blend_weights(topo, counts)
  logits = rule_logits(topo, counts, blend)
  if blend not in ("topology", "learnable"):
    weights = np.exp(logits - logits.max(-1, keepdims=True).astype(np.float64))
    weights /= weights.sum(-1, keepdims=True)
  weights = weights.astype(np.float64)
  joints = (np.zeros((topo.num_joints, 3)) if rest_pose is None
            else np.asarray(rest_pose, np.float64))
  means = weights @ joints

  lmax = max(float(lengths.max()), 1e-12) if lengths.size else 1.0
  rel = lengths / lmax
  radii = np.empty(len(weights))
  for i in range(topo.num_joints):
    adjacent = [rel[b] for b, (p, c) in enumerate(topo.bones) if i in (p, c)]
    r = float(np.median(adjacent)) if adjacent else 1.0
    radii[i] = np.clip(joint_radius * r**gamma, *joint_radius_range)
  for k in range(topo.num_joints, len(weights)):
    radii[k] = np.clip(bone_radius * rel[bone_of[k]]**gamma, *bone_radius_range)

  quats = np.zeros((len(weights), 4), np.float32)
  quats[:, 0] = 1.0
  return GaussianLayout(
      topology=topo.name,
      samples_per_bone=counts,
      canonical_joints=joints.astype(np.float32),
      canonical_means=means.astype(np.float32),
      scales=np.repeat(radii[:, None], 3, axis=1).astype(np.float32),
      quats=quats,
      blend_logits=logits,
      fractions=fractions,
      bone_of=bone_of,
  )
