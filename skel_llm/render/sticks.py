"""A family of generic stick-figure renderers (numpy), NOT DrAction: the pretraining pictures.

Glossary: T frames of the clip, n frames drawn, P persons, J joints, Bn bones, S image side.

The embedded world's stand-in for InternVL3 (`skel_llm.pretrain`) is pretrained on pictures
of moving people that have nothing to do with DrAction's Gaussians: each clip is drawn by one
member of this family, picked by a seed (`draw_style`): a background (solid colour or a
vertical two-colour gradient), a bone colouring (one colour for the whole figure, one colour
per body side, or one random colour per bone), a line width, joint dots (none, or a radius and
a colour), a camera yaw about the vertical axis through the person, and a scale and shift of
the figure in the picture. `plain_style` is the family's plainest member: a black background,
one bright colour for the whole figure, no dots, a frontal view (the pretraining corpus draws a
fraction of its clips so: `CorpusSpec.plain_fraction`). Projection is orthographic (x right,
y up), the whole clip fitted
into the frame at the style's scale, so the figure does not jump between frames.

The output has DrAction's layout, float32[n, S, S, 3] in [0, 1], with the n frames taken at
the midpoints of n equal segments of the clip (`skel_llm.render.frames.segment_indices`
without an rng).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skel_llm.skeleton import topology as topology_lib

COLOURINGS = ("single", "sides", "per_bone")
YAW_DEG = (-60.0, 60.0)
WIDTH_PX = (0.8, 1.8)
DOT_RADIUS_PX = (0.5, 1.2)
SCALE = (0.6, 0.9)  # the figure's extent as a fraction of the picture side


@dataclasses.dataclass(frozen=True)
class StickStyle:
  """One member of the family (all colours RGB in [0, 1]).

  Attributes:
    background: float32[2, 3], top and bottom colour (equal: a solid background).
    bone_colours: float32[Bn, 3], one colour per bone of the topology.
    width: line width in pixels.
    dot_radius: joint dot radius in pixels; 0 draws no dots.
    dot_colour: float32[3].
    yaw_deg: camera yaw about the vertical axis through the clip's centre.
    scale: the clip's larger extent as a fraction of S.
    shift: float32[2], offset of the figure's centre in fractions of S (x right, y down).
  """

  background: np.ndarray
  bone_colours: np.ndarray
  width: float
  dot_radius: float
  dot_colour: np.ndarray
  yaw_deg: float
  scale: float
  shift: np.ndarray


def _contrasting(rng: np.random.Generator, background: np.ndarray, k: int) -> np.ndarray:
  """k random colours whose brightness differs from the background's by at least 0.35."""
  out = []
  bg = float(background.mean())
  while len(out) < k:
    c = rng.uniform(0.0, 1.0, 3)
    if abs(float(c.mean()) - bg) >= 0.35:
      out.append(c)
  return np.asarray(out, np.float32)


def draw_style(seed: int | tuple, topology: str = "ntu25") -> StickStyle:
  """The style of seed `seed` (an int or a tuple of ints: a numpy SeedSequence entropy)."""
  topo = topology_lib.get(topology)
  rng = np.random.default_rng(seed)
  top = rng.uniform(0.0, 1.0, 3)
  bottom = top if rng.random() < 0.5 else np.clip(top + rng.uniform(-0.3, 0.3, 3), 0.0, 1.0)
  background = np.stack([top, bottom]).astype(np.float32)
  colouring = COLOURINGS[int(rng.integers(len(COLOURINGS)))]
  nb = topo.num_bones
  if colouring == "single":
    bones = np.repeat(_contrasting(rng, background, 1), nb, axis=0)
  elif colouring == "sides":
    left, right, centre = _contrasting(rng, background, 3)
    lefts = {a for a, _ in topo.left_right}
    rights = {b for _, b in topo.left_right}
    bones = np.asarray([left if (a in lefts or b in lefts) else
                        right if (a in rights or b in rights) else centre
                        for a, b in topo.bones], np.float32)
  else:
    bones = _contrasting(rng, background, nb)
  dots = rng.random() < 0.7
  return StickStyle(
      background=background, bone_colours=bones.astype(np.float32),
      width=float(rng.uniform(*WIDTH_PX)),
      dot_radius=float(rng.uniform(*DOT_RADIUS_PX)) if dots else 0.0,
      dot_colour=_contrasting(rng, background, 1)[0],
      yaw_deg=float(rng.uniform(*YAW_DEG)), scale=float(rng.uniform(*SCALE)),
      shift=rng.uniform(-0.08, 0.08, 2).astype(np.float32))


def plain_style(style: StickStyle) -> StickStyle:
  """`style` drawn plainly: black background, the whole figure in its first bone colour scaled
  to full brightness (largest channel 1), no joint dots, frontal view (yaw 0); its width,
  scale and shift are kept.

  Why: a tiny vision tower trained from scratch does not learn to read the whole family in a
  few hundred steps (README, "A pretrained MLLM for the embedded world": a linear probe on the
  tower's features, batches of 32 clips, stays at chance on the family after 150 steps and
  reaches 92 % on plain figures after 50), so the corpus can draw its clips plain.
  """
  colour = style.bone_colours[0] / max(float(style.bone_colours[0].max()), 1e-3)
  return dataclasses.replace(
      style, background=np.zeros_like(style.background),
      bone_colours=np.broadcast_to(colour, style.bone_colours.shape).astype(np.float32),
      dot_radius=0.0, yaw_deg=0.0)


def frame_indices(length: int, n: int) -> np.ndarray:
  """int[n]: midpoints of n equal segments of `length` frames (as DrAction's evaluation)."""
  length = max(int(length), 1)
  i = np.arange(n)
  return ((2 * i + 1) * length) // (2 * n)


def project(positions: np.ndarray, style: StickStyle, image_size: int) -> np.ndarray:
  """float32[T, P, J, 3] camera metres (y up) -> pixel coordinates float32[T, P, J, 2].

  Missing joints (all-zero positions) are left out of the fit; their coordinates are
  meaningless and `render` skips them.
  """
  pos = np.asarray(positions, np.float64)
  present = np.any(pos != 0, axis=-1)  # [T, P, J]
  if not present.any():
    raise ValueError("stick renderer: the clip has no joint positions (all zero)")
  centre = pos[present].mean(axis=0)
  yaw = np.deg2rad(style.yaw_deg)
  c, s = np.cos(yaw), np.sin(yaw)
  x = (pos[..., 0] - centre[0]) * c + (pos[..., 2] - centre[2]) * s
  y = pos[..., 1] - centre[1]
  xs, ys = x[present], y[present]
  mid = np.array([(xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2])
  extent = max(xs.max() - xs.min(), ys.max() - ys.min(), 1e-6)
  k = style.scale * image_size / extent
  u = (x - mid[0]) * k + image_size * (0.5 + style.shift[0])
  v = -(y - mid[1]) * k + image_size * (0.5 + style.shift[1])
  return np.stack([u, v], axis=-1).astype(np.float32)


def render(positions: np.ndarray, style: StickStyle, *, num_frames: int, image_size: int,
           topology: str = "ntu25", length: int | None = None) -> np.ndarray:
  """Stick-figure frames float32[n, S, S, 3] in [0, 1] of a clip float32[T, P, J, 3].

  Args:
    positions: camera metres, y up (what `skel_llm.render.camera.place` gives DrAction);
      all-zero joints are missing, an all-zero person is absent.
    style: from `draw_style`.
    num_frames: n.
    image_size: S.
    topology: the skeleton's bones.
    length: true frames of a padded clip (default T).
  """
  topo = topology_lib.get(topology)
  positions = np.asarray(positions, np.float32)
  if positions.ndim != 4 or positions.shape[2] != topo.num_joints or positions.shape[3] != 3:
    raise ValueError(f"stick renderer: positions must be float32[T, P, {topo.num_joints}, 3] "
                     f"({topology}), got shape {positions.shape}")
  t = positions.shape[0] if length is None else int(length)
  positions = positions[:t]
  uv = project(positions, style, image_size)[frame_indices(t, num_frames)]  # [n, P, J, 2]
  present = np.any(positions[frame_indices(t, num_frames)] != 0, axis=-1)  # [n, P, J]
  s = image_size
  ramp = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None, None]
  background = style.background[0] * (1 - ramp) + style.background[1] * ramp  # [S, 1, 3]
  grid = np.stack(np.meshgrid(np.arange(s, dtype=np.float32) + 0.5,
                              np.arange(s, dtype=np.float32) + 0.5, indexing="xy"), -1)
  bones = np.asarray(topo.bones, np.int64)
  out = np.empty((num_frames, s, s, 3), np.float32)
  for f in range(num_frames):
    img = np.broadcast_to(background, (s, s, 3)).copy()
    for p in range(uv.shape[1]):
      ok = present[f, p]
      if not ok.any():
        continue
      a, b = uv[f, p, bones[:, 0]], uv[f, p, bones[:, 1]]  # [Bn, 2]
      ab = b - a
      ap = grid[:, :, None, :] - a  # [S, S, Bn, 2]
      tt = np.clip(np.sum(ap * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-6), 0.0, 1.0)
      dist = np.linalg.norm(ap - tt[..., None] * ab, axis=-1)  # [S, S, Bn]
      cover = np.clip(0.5 * style.width + 0.5 - dist, 0.0, 1.0)
      drawn = ok[bones[:, 0]] & ok[bones[:, 1]]
      for i in np.flatnonzero(drawn):  # bone order: later bones paint over earlier ones
        alpha = cover[..., i, None]
        img = img * (1 - alpha) + style.bone_colours[i] * alpha
      if style.dot_radius > 0:
        dj = np.linalg.norm(grid[:, :, None, :] - uv[f, p], axis=-1)  # [S, S, J]
        alpha = np.max(np.clip(style.dot_radius + 0.5 - dj, 0.0, 1.0) * ok, axis=-1)[..., None]
        img = img * (1 - alpha) + style.dot_colour * alpha
    out[f] = img
  return np.clip(out, 0.0, 1.0)
