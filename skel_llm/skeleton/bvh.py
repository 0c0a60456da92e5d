"""BVH motion capture: hierarchy, channels, forward kinematics (End Sites included).

The topology comes from the file: every JOINT (and every End Site, named
`<parent>_end`) is a joint, every parent -> child link a bone. Positions come
from forward kinematics with the rotations composed in each joint's declared
channel order (`Zrotation Xrotation Yrotation` means R = Rz @ Rx @ Ry acting on
column vectors), in degrees; position channels add to the joint's OFFSET.
Units are the file's (not converted); BVH's up axis is +y.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from skel_llm.skeleton import bounds, fastfloat, files, topology
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

_CHANNELS = {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}


@dataclasses.dataclass
class BvhJoint:
  name: str
  parent: int  # -1 for the root
  offset: np.ndarray  # float64[3]
  channels: tuple[str, ...]  # empty for End Sites
  is_end_site: bool
  line: int
  offset_line: int = 0  # 1-based line of its OFFSET values


class _Tokens:
  """Whitespace tokens of the HIERARCHY block with their 1-based line numbers."""

  def __init__(self, lines: list[str], path: str):
    self.items = [(tok, k + 1) for k, line in enumerate(lines) for tok in line.split()]
    self.pos = 0
    self.path = path
    self.last_line = len(lines)

  def next(self, expected: str) -> tuple[str, int]:
    if self.pos >= len(self.items):
      raise SkeletonFormatError(self.path, self.last_line, f"hierarchy ends early: expected "
                                f"{expected}")
    item = self.items[self.pos]
    self.pos += 1
    return item

  def expect(self, word: str) -> int:
    tok, line = self.next(repr(word))
    if tok != word:
      raise SkeletonFormatError(self.path, line, f"expected {word!r}, got {tok!r}")
    return line

  def number(self, what: str) -> float:
    tok, line = self.next(what)
    try:
      v = float(tok)
    except ValueError:
      raise SkeletonFormatError(self.path, line, f"expected {what} (a number), got {tok!r}") from None
    if not np.isfinite(v):
      raise SkeletonFormatError(self.path, line, f"expected a finite {what}, got {tok!r}")
    return v


def _parse_joint(tokens: _Tokens, joints: list[BvhJoint], parent: int, name: str, line: int,
                 end_site: bool) -> None:
  tokens.expect("{")
  offset_line = tokens.expect("OFFSET")
  offset = np.array([tokens.number(f"OFFSET {a}") for a in "xyz"])
  channels: tuple[str, ...] = ()
  if not end_site:
    tokens.expect("CHANNELS")
    n_tok, n_line = tokens.next("the channel count")
    if not n_tok.isdigit():
      raise SkeletonFormatError(tokens.path, n_line, f"expected the channel count, got {n_tok!r}")
    chans = []
    for _ in range(int(n_tok)):
      ch, ch_line = tokens.next("a channel name")
      if ch not in _CHANNELS:
        raise SkeletonFormatError(tokens.path, ch_line, f"expected a channel name "
                                  f"(X|Y|Z)(position|rotation), got {ch!r}")
      chans.append(ch)
    channels = tuple(chans)
    if len(set(channels)) != len(channels):
      raise SkeletonFormatError(tokens.path, n_line, f"repeated channel in {channels}")
  index = len(joints)
  joints.append(BvhJoint(name, parent, offset, channels, end_site, line, offset_line))
  ends = 0
  while True:
    tok, tok_line = tokens.next("JOINT, End Site or '}'")
    if tok == "}":
      return
    if end_site:
      raise SkeletonFormatError(tokens.path, tok_line, f"expected '}}' closing End Site, got {tok!r}")
    if tok == "JOINT":
      child, _ = tokens.next("a joint name")
      _parse_joint(tokens, joints, index, child, tok_line, False)
    elif tok == "End":
      tokens.expect("Site")
      ends += 1
      _parse_joint(tokens, joints, index, f"{name}_end" + ("" if ends == 1 else str(ends)),
                   tok_line, True)
    else:
      raise SkeletonFormatError(tokens.path, tok_line, f"expected JOINT, End Site or '}}', got "
                                f"{tok!r}")


def read_bvh(path: str | os.PathLike, text: str | None = None, *,  # noqa: C901
             max_abs: float = bounds.BVH_MAX_ABS, max_angle: float = bounds.BVH_MAX_ANGLE
             ) -> tuple[list[BvhJoint], np.ndarray, float]:
  """(joints, motion float64[T, channels], frame_time) of a BVH file.

  OFFSETs and position channels must lie within +-`max_abs` file units,
  rotation channels within +-`max_angle` degrees, the frame time within
  `bounds.BVH_FRAME_TIME` seconds.
  """
  path = os.fspath(path)
  if text is None:
    text = files.read_text(path)
  if not text.strip():
    raise SkeletonFormatError(path, 1, "empty file: expected 'HIERARCHY'")
  lines = text.splitlines()
  motion_at = next((k for k, line in enumerate(lines) if line.strip() == "MOTION"), None)
  if motion_at is None:
    raise SkeletonFormatError(path, len(lines), "expected a 'MOTION' line after the hierarchy")
  tokens = _Tokens(lines[:motion_at], path)
  tokens.expect("HIERARCHY")
  line = tokens.expect("ROOT")
  name, _ = tokens.next("the root name")
  joints: list[BvhJoint] = []
  _parse_joint(tokens, joints, -1, name, line, False)
  if tokens.pos != len(tokens.items):
    tok, tok_line = tokens.items[tokens.pos]
    raise SkeletonFormatError(path, tok_line, f"expected 'MOTION' after the root joint, got "
                              f"{tok!r} (one ROOT per file is supported)")

  def header(k: int, key: str, cast):
    if k >= len(lines):
      raise SkeletonFormatError(path, k + 1, f"file ends early: expected '{key}: <value>'")
    m = re.fullmatch(rf"\s*{key}:\s*(\S+)\s*", lines[k])
    if m is None:
      raise SkeletonFormatError(path, k + 1, f"expected '{key}: <value>', got {lines[k][:60]!r}")
    try:
      return cast(m.group(1))
    except ValueError:
      raise SkeletonFormatError(path, k + 1, f"expected a number after '{key}:', got "
                                f"{m.group(1)!r}") from None

  num_frames = header(motion_at + 1, "Frames", int)
  frame_time = header(motion_at + 2, "Frame Time", float)
  if num_frames < 1:
    raise SkeletonFormatError(path, motion_at + 2, f"expected at least one frame, got {num_frames}")
  lo, hi = bounds.BVH_FRAME_TIME
  if not (np.isfinite(frame_time) and lo <= frame_time <= hi):
    raise SkeletonFormatError(path, motion_at + 3, f"expected a frame time in [{lo}, {hi}] "
                              f"seconds, got {frame_time:.6g}")
  for j in joints:
    bounds.check_abs(j.offset, max_abs, path=path, what="OFFSET",
                     where=lambda idx, j=j: (j.offset_line, f"joint {j.name} {'xyz'[idx[0]]}"))
  first = motion_at + 3
  rows = lines[first:]
  while rows and not rows[-1].strip():
    rows.pop()
  if len(rows) != num_frames:
    where = first + min(len(rows), num_frames) + 1
    raise SkeletonFormatError(path, where, f"'Frames: {num_frames}' but the file has {len(rows)} "
                              "motion rows")
  num_channels = sum(len(j.channels) for j in joints)
  motion = fastfloat.parse_rows(rows, num_channels, path=path, line_of_row=lambda r: first + r + 1)
  names = [f"{j.name} {ch}" for j in joints for ch in j.channels]
  is_angle = np.array([ch.endswith("rotation") for j in joints for ch in j.channels], bool)
  limit = np.where(is_angle, max_angle, max_abs)
  bounds.check_range(motion, -limit, limit, path=path, what="channel value",
                     where=lambda idx: (first + idx[0] + 1, f"field {idx[1] + 1} ({names[idx[1]]})"),
                     hint=" (a physically impossible magnitude; pass max_abs= / max_angle= for "
                     "unusual data)")
  return joints, motion, frame_time


def _first_motion_line(path: str) -> int:
  """1-based line of the first motion row (only called to name a line in an error)."""
  lines = files.read_text(path).splitlines()
  return next(k for k, line in enumerate(lines) if line.strip() == "MOTION") + 4


def _axis_rotations(axis: str, degrees: np.ndarray) -> np.ndarray:
  """float64[T, 3, 3] rotations by `degrees` about `axis`."""
  a = np.deg2rad(degrees)
  c, s = np.cos(a), np.sin(a)
  one, zero = np.ones_like(a), np.zeros_like(a)
  if axis == "X":
    m = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
  elif axis == "Y":
    m = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
  else:
    m = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
  return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def forward_kinematics(joints: list[BvhJoint], motion: np.ndarray) -> np.ndarray:
  """float64[T, J, 3] global joint positions."""
  t = motion.shape[0]
  positions = np.zeros((t, len(joints), 3))
  rotations = np.zeros((t, len(joints), 3, 3))
  col = 0
  for j, joint in enumerate(joints):
    local_r = np.broadcast_to(np.eye(3), (t, 3, 3))
    trans = np.broadcast_to(joint.offset, (t, 3)).copy()
    for ch in joint.channels:
      values = motion[:, col]
      col += 1
      axis = "XYZ".index(ch[0])
      if ch.endswith("position"):
        trans[:, axis] += values
      else:
        local_r = local_r @ _axis_rotations(ch[0], values)
    if joint.parent < 0:
      positions[:, j] = trans
      rotations[:, j] = local_r
    else:
      pr = rotations[:, joint.parent]
      positions[:, j] = positions[:, joint.parent] + np.einsum("tij,tj->ti", pr, trans)
      rotations[:, j] = pr @ local_r
  return positions


_SIDE_RE = re.compile(r"^(Left|Right|L|R)(?=[A-Z_])|(Left|Right)$")
_PART_WORDS = (  # (part stem, substrings), first match wins; sides from the joint name
    ("hand", ("hand", "finger", "thumb", "wrist", "index", "middle", "ring", "pinky")),
    ("foot", ("foot", "toe", "ankle")),
    ("arm", ("arm", "shoulder", "elbow", "collar", "clavicle")),
    ("leg", ("upleg", "thigh", "knee", "leg", "hip")),
    ("head", ("head", "neck", "nose", "eye")),
    ("torso", ("spine", "chest", "back", "hips", "pelvis", "root", "abdomen")),
)


def _side(name: str) -> str | None:
  m = _SIDE_RE.search(name)
  if not m:
    return None
  word = m.group(1) or m.group(2)
  return "left" if word[0] == "L" else "right"


def bvh_topology(joints: list[BvhJoint], name: str) -> topology.Topology:
  """A (not registered) `Topology` from a BVH hierarchy; parts and sides from joint names."""
  names = tuple(j.name for j in joints)
  bones = tuple((j.parent, k) for k, j in enumerate(joints) if j.parent >= 0)
  parts: dict[str, list[int]] = {}
  for k, jname in enumerate(names):
    low = jname.lower()
    side = _side(jname)
    for stem, words in _PART_WORDS:
      if any(w in low for w in words):
        if stem in ("head", "torso"):
          parts.setdefault(stem, []).append(k)
        elif side is not None:
          parts.setdefault(f"{side}_{stem}", []).append(k)
        break
  stripped = {k: _SIDE_RE.sub("", n) for k, n in enumerate(names) if _side(n)}
  left_right = tuple(
      (a, b) for a in stripped for b in stripped
      if _side(names[a]) == "left" and _side(names[b]) == "right" and stripped[a] == stripped[b])
  return topology.Topology(name=name, joint_names=names, bones=bones, root=0,
                           left_right=left_right, parts={k: tuple(v) for k, v in parts.items()},
                           up_axis="+y", units="unknown")


def parse_bvh(path: str | os.PathLike, *, max_abs: float = bounds.BVH_MAX_ABS,
              max_angle: float = bounds.BVH_MAX_ANGLE) -> SkeletonRecord:
  """positions float32[T, 1, J, 3] from forward kinematics; J counts End Sites.

  metadata: topology (from the file), frame_time, channels per joint, offsets,
  end_site flags. Bounds as in `read_bvh`; the FK positions must also lie
  within +-`max_abs` file units.
  """
  path = os.fspath(path)
  joints, motion, frame_time = read_bvh(path, max_abs=max_abs, max_angle=max_angle)
  pos = bounds.checked_float32(
      forward_kinematics(joints, motion), max_abs, path=path, what="FK position",
      where=lambda idx: (_first_motion_line(path) + idx[0], f"joint {joints[idx[1]].name} {'xyz'[idx[2]]}"))
  topo = bvh_topology(joints, f"bvh:{files.basename_stem(path)}")
  meta = {"file_format": "bvh", "name": files.basename_stem(path), "topology": topo,
          "frame_time": frame_time, "channels": [j.channels for j in joints],
          "offsets": np.stack([j.offset for j in joints]),
          "end_site": np.array([j.is_end_site for j in joints])}
  t, nj = pos.shape[:2]
  return SkeletonRecord(positions=pos[:, None],
                        valid=np.ones((t, 1, nj), np.float32), format="bvh", fps=1.0 / frame_time,
                        metadata=meta, source=path)
