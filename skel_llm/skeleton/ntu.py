"""NTU RGB+D / Kinect v2 `.skeleton` files: strict parser, actor selection, missing-sample lists.

File layout (one value group per line, CRLF or LF):

    <frames>
    per frame:  <bodies>
      per body: <id> <clipped> <hand L conf> <hand L state> <hand R conf> <hand R state>
                <restricted> <lean x> <lean y> <tracking state>        (10 fields)
                <joints = 25>
                25 x: x y z depthX depthY colorX colorY oriW oriX oriY oriZ trackingState

Actor selection (`bodies='denoise'`, the default) follows the standard NTU
denoising used by the skeleton action-recognition literature (the
`get_raw_denoised_data` step of View-Adaptive / CTR-GCN preprocessing): with
more than one body ID in a file, drop bodies seen in at most 11 frames, drop
bodies whose x-spread exceeds 0.8 x the y-spread in at least 69.754 % of their
frames, rank the rest by motion (summed variance of their joints), take the
most moving body as actor 1 and give every further body, in motion order, to
actor 1 if its frame interval does not overlap actor 1's, else to actor 2 if
it does not overlap actor 2's, else discard it. Unlike that script, frames with
no body are kept (as invalid frames), never dropped; a body's interval is its
true first and last frame (the script counts appearances from the first one);
and when every body is short, the length filter is skipped and recorded (the
script would be left with no body). `bodies='first'` keeps the
first two bodies of each frame in file order (what the DrAction reference
renders use). Every choice is recorded in `record.metadata['body_selection']`.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Iterable

import numpy as np

from skel_llm.skeleton import bounds, fastfloat, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 25
JOINT_FIELDS = 12
BODY_FIELDS = 10
FPS = 30.0

JOINT_FIELD_NAMES = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW",
                     "orientationX", "orientationY", "orientationZ", "trackingState")
BODY_FIELD_NAMES = ("clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
                    "handRightState", "isRestricted", "leanX", "leanY", "trackingState")
# Kinect v2 SDK ranges: FrameEdges flags 0..15, TrackingConfidence 0..1, HandState 0..4,
# restricted 0..1, lean -1..1, TrackingState 0..2.
BODY_LIMITS = (np.array([0, 0, 0, 0, 0, 0, -1, -1, 0], np.float64),
               np.array([15, 1, 4, 1, 4, 1, 1, 1, 2], np.float64))
DEPTH_SIZE = (512.0, 424.0)
COLOR_SIZE = (1920.0, 1080.0)
ORIENTATION_MAX = 1.001  # unit quaternion components, with rounding slack

# Thresholds of the standard NTU denoising (get_raw_denoised_data.py).
NOISE_LEN_THRES = 11
NOISE_SPR_THRES1 = 0.8
NOISE_SPR_THRES2 = 0.69754

_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


def parse_name(name: str) -> dict[str, int]:
  """Setup / camera / subject / replication / action (1-based) of an NTU sample name."""
  m = _NAME_RE.search(os.path.basename(str(name)))
  if m is None:
    return {}
  s, c, p, r, a = (int(g) for g in m.groups())
  return {"setup": s, "camera": c, "subject": p, "replication": r, "action": a, "label": a - 1}


class _Lines:
  """Lines of a file's bytes (LF or CRLF) by index, from one scan for line breaks.

  Errors name 1-based line numbers.
  """

  def __init__(self, raw: bytes, path: str):
    self.raw = raw
    self.path = path
    breaks = np.flatnonzero(np.frombuffer(raw, np.uint8) == 10)
    self.starts = [0] + (breaks + 1).tolist()
    self.ends = breaks.tolist() + [len(raw)]
    if self.starts[-1] == len(raw):  # a final line break ends the last line
      self.starts.pop()
      self.ends.pop()
    self.count = len(self.starts)

  def get(self, i: int) -> bytes:
    """Line i (0-based) without its line break; b'' past the end."""
    if i >= self.count:
      return b""
    line = self.raw[self.starts[i]:self.ends[i]]
    return line[:-1] if line.endswith(b"\r") else line

  def text(self, i: int) -> str:
    return self.get(i).decode("ascii")

  def need(self, i: int, expected: str) -> bytes:
    if i >= self.count:
      raise SkeletonFormatError(self.path, i + 1, f"file ends early: expected {expected}")
    return self.get(i)

  def int_line(self, i: int, expected: str) -> int:
    tokens = self.need(i, expected).split()
    if len(tokens) != 1:
      raise SkeletonFormatError(self.path, i + 1, f"expected {expected} (one integer), got "
                                f"{len(tokens)} fields {self.text(i)[:60]!r}")
    try:
      return int(tokens[0])
    except ValueError:
      raise SkeletonFormatError(self.path, i + 1, f"expected {expected} (one integer), got "
                                f"{tokens[0].decode()!r}") from None


def _joint_limits(max_abs: float, image_margin: float) -> tuple[np.ndarray, np.ndarray]:
  """(lo, hi) float64[12], the bounds of each joint field."""
  depth_lo, depth_hi = bounds.image_limits(DEPTH_SIZE, image_margin)
  color_lo, color_hi = bounds.image_limits(COLOR_SIZE, image_margin)
  lo = np.concatenate([[-max_abs] * 3, depth_lo, color_lo, [-ORIENTATION_MAX] * 4, [0]])
  hi = np.concatenate([[max_abs] * 3, depth_hi, color_hi, [ORIENTATION_MAX] * 4, [2]])
  return lo, hi


def read_ntu_raw(path: str | os.PathLike, text: str | None = None, *,  # noqa: C901
                 max_abs: float = bounds.METRIC_MAX_ABS,
                 image_margin: float = bounds.IMAGE_MARGIN) -> dict:
  """Strictly parses an NTU `.skeleton` file into per-body-occurrence arrays.

  Bounds (`skel_llm.skeleton.bounds`): joint x, y, z within +-`max_abs`
  camera metres; depthX/Y and colorX/Y within `image_margin` image sizes of
  the 512 x 424 depth and 1920 x 1080 colour images; orientation quaternion
  components within +-1.001; tracking state 0, 1 or 2; body header fields
  within their Kinect SDK enum ranges (`BODY_LIMITS`).

  Returns a dict with
    num_frames: int T;
    frame: int32[N] frame of each body occurrence (N = total bodies over frames);
    body_id: list[str] of length N (Kinect tracking IDs, kept as text);
    body_info: float64[N, 9] the 9 numeric body header fields;
    joints: float64[N, 25, 12] all joint fields;
    bodies_per_frame: int32[T];
    header_line: int32[N] 1-based line of each body occurrence's header.
  """
  path = os.fspath(path)
  raw = files.read_bytes(path) if text is None else text.encode("utf-8")
  if not raw.isascii():
    line = raw[:next(k for k, c in enumerate(raw) if c > 127)].count(b"\n") + 1
    raise SkeletonFormatError(path, line, "expected ASCII text, found a non-ASCII byte")
  if not raw or raw.isspace():
    raise SkeletonFormatError(path, 1, "empty file: expected the frame count")
  src = _Lines(raw, path)
  get = src.get
  num_frames = src.int_line(0, "the frame count")
  if num_frames < 1:
    raise SkeletonFormatError(path, 1, f"expected a positive frame count, got {num_frames}")
  i = 1
  frames, ids, headers, header_lines = [], [], [], []
  joint_starts: list[int] = []
  spans: list[tuple[int, int]] = []  # byte range of each body's 25 joint lines
  bodies_per_frame = []
  num_lines = src.count
  # The common case (clean digits, enough lines) stays on a short path; anything else goes
  # through `_Lines`, which names the line and what was expected.
  for f in range(num_frames):
    line = get(i)
    nb = int(line) if line.isdigit() else src.int_line(i, f"the body count of frame {f + 1}")
    if nb < 0:
      raise SkeletonFormatError(path, i + 1, f"expected a body count >= 0, got {nb}")
    bodies_per_frame.append(nb)
    i += 1
    for b in range(nb):
      start = i + 2
      if start + NUM_JOINTS > num_lines:  # the file ends inside this body: name where
        src.need(i, f"the header of body {b + 1} in frame {f + 1}")
        src.int_line(i + 1, f"the joint count of body {b + 1} in frame {f + 1}")
        raise SkeletonFormatError(path, num_lines + 1, f"file ends early: expected "
                                  f"{NUM_JOINTS} joint lines from line {start + 1}")
      header = get(i).split(None, 1)
      frames.append(f)
      ids.append(header[0].decode() if header else "")
      headers.append(header[1] if len(header) == 2 else b"")
      header_lines.append(i + 1)
      line = get(i + 1)
      nj = int(line) if line.isdigit() else src.int_line(
          i + 1, f"the joint count of body {b + 1} in frame {f + 1}")
      if nj != NUM_JOINTS:
        raise SkeletonFormatError(path, i + 2, f"expected {NUM_JOINTS} joints, got {nj}")
      i = start + NUM_JOINTS
      joint_starts.append(start)
      spans.append((src.starts[start], src.ends[i - 1]))
  for extra in range(i, num_lines):
    if get(extra).strip():
      raise SkeletonFormatError(path, extra + 1, f"expected end of file after {num_frames} "
                                f"frames, got {src.text(extra)[:60]!r}")

  n = len(frames)

  def joint_line(r: int) -> int:
    return joint_starts[r // NUM_JOINTS] + r % NUM_JOINTS

  values = fastfloat.parse_spans(
      raw, spans, n * NUM_JOINTS, JOINT_FIELDS, path=path,
      rows=lambda: [src.text(joint_line(r)) for r in range(n * NUM_JOINTS)],
      line_of_row=lambda r: joint_line(r) + 1)

  def joint_where(idx: tuple[int, ...]) -> tuple[int, str]:
    return joint_line(idx[0]) + 1, f"field {idx[1] + 1} ({JOINT_FIELD_NAMES[idx[1]]})"

  lo, hi = _joint_limits(max_abs, image_margin)  # one pass over all fields
  bounds.check_range(values, lo, hi, path=path, where=joint_where, what="value",
                     hint=" (a physically impossible value; pass max_abs= (x, y, z metres) or "
                     "image_margin= (pixel fields) for unusual data)")
  state = values[:, JOINT_FIELDS - 1]
  if not np.isin(state, (0.0, 1.0, 2.0)).all():
    row = int(np.flatnonzero(~np.isin(state, (0.0, 1.0, 2.0)))[0])
    raise SkeletonFormatError(path, joint_line(row) + 1, f"field {JOINT_FIELDS}: expected a "
                              f"tracking state 0, 1 or 2, got {state[row]:.6g}")
  body_info = fastfloat.parse_blob(
      b"\n".join(headers), n, BODY_FIELDS - 1, path=path,
      rows=lambda: [h.decode() for h in headers], line_of_row=lambda r: header_lines[r],
      what="body header numbers after the body ID")
  bounds.check_range(body_info, BODY_LIMITS[0], BODY_LIMITS[1], path=path, what="value",
                     where=lambda idx: (header_lines[idx[0]],
                                        f"field {idx[1] + 2} ({BODY_FIELD_NAMES[idx[1]]})"))
  return {
      "num_frames": num_frames,
      "frame": np.asarray(frames, np.int32),
      "body_id": ids,
      "body_info": body_info,
      "joints": values.reshape(n, NUM_JOINTS, JOINT_FIELDS),
      "bodies_per_frame": np.asarray(bodies_per_frame, np.int32),
      "header_line": np.asarray(header_lines, np.int32),
  }


def _spread_valid(xyz: np.ndarray) -> np.ndarray:
  """bool[n]: bodies whose x-spread is at most 0.8 x the y-spread (not noisy), xyz [n, 25, 3]."""
  x, y = xyz[..., 0], xyz[..., 1]
  return x.max(axis=1) - x.min(axis=1) <= NOISE_SPR_THRES1 * (y.max(axis=1) - y.min(axis=1))


def _select_denoise(raw: dict) -> tuple[list[list[int]], dict]:
  """Actor slots (lists of occurrence indices) chosen by the standard NTU denoising."""
  frame = raw["frame"]
  order: dict[str, list[int]] = {}
  for k, bid in enumerate(raw["body_id"]):
    order.setdefault(bid, []).append(k)
  info = {"method": "denoise", "bodies": {}, "removed": {}, "actors": [], "discarded": []}
  for bid, occ in order.items():
    info["bodies"][bid] = {"frames": len(occ), "first_frame": int(frame[occ[0]]),
                           "last_frame": int(frame[occ[-1]])}
  if len(order) == 1:
    bid, occ = next(iter(order.items()))
    info["actors"] = [[bid]]
    return [occ], info

  xyz = np.ascontiguousarray(raw["joints"][..., :3])
  not_noisy = _spread_valid(xyz)  # every body occurrence at once
  motion = {bid: float(np.sum(np.var(xyz[occ].reshape(-1, 3), axis=0))) for bid, occ in order.items()}
  for bid in order:
    info["bodies"][bid]["motion"] = motion[bid]
  alive = dict(order)
  short = [bid for bid, occ in alive.items() if len(occ) <= NOISE_LEN_THRES]
  if len(short) < len(alive):
    for bid in short:
      del alive[bid]
      info["removed"][bid] = f"length {len(order[bid])} <= {NOISE_LEN_THRES} frames"
  else:
    info["length_filter_skipped"] = "every body is short; the length filter would remove all"
  if len(alive) > 1:
    for bid in list(alive):
      if len(alive) == 1:
        break
      occ = alive[bid]
      ok = not_noisy[occ]
      noise = len(occ) - int(ok.sum())
      if noise == 0:
        continue
      ratio = noise / len(occ)
      if ratio >= NOISE_SPR_THRES2:
        del alive[bid]
        info["removed"][bid] = f"spread noise in {ratio:.3f} of frames >= {NOISE_SPR_THRES2}"
      else:
        kept = xyz[np.asarray(occ)[ok]].reshape(-1, 3)
        motion[bid] = min(motion[bid], float(np.sum(np.var(kept, axis=0))))
        info["bodies"][bid]["motion"] = motion[bid]
  ranked = sorted(alive, key=lambda b: motion[b], reverse=True)
  slots: list[list[int]] = [list(alive[ranked[0]])]
  names = [[ranked[0]]]
  span1 = [frame[slots[0][0]], frame[slots[0][-1]]]
  span2 = [0, 0]  # virtual initial interval of actor 2, as in the standard script
  for bid in ranked[1:]:
    occ = alive[bid]
    start, end = frame[occ[0]], frame[occ[-1]]
    if min(span1[1], end) - max(span1[0], start) <= 0:
      slots[0].extend(occ)
      names[0].append(bid)
      span1 = [min(start, span1[0]), max(end, span1[1])]
    elif min(span2[1], end) - max(span2[0], start) <= 0:
      if len(slots) == 1:
        slots.append([])
        names.append([])
      slots[1].extend(occ)
      names[1].append(bid)
      span2 = [min(start, span2[0]), max(end, span2[1])]
    else:
      info["discarded"].append(bid)
  info["actors"] = names
  return slots, info


def _select_first(raw: dict, max_bodies: int) -> tuple[list[list[int]], dict]:
  """Actor slots: the first `max_bodies` bodies of each frame, in file order."""
  slots: list[list[int]] = [[] for _ in range(max_bodies)]
  rank = 0
  prev = -1
  for k, f in enumerate(raw["frame"]):
    rank = rank + 1 if f == prev else 0
    prev = f
    if rank < max_bodies:
      slots[rank].append(k)
  slots = [s for s in slots if s]
  dropped = int(np.maximum(raw["bodies_per_frame"] - max_bodies, 0).sum())
  return slots, {"method": "first", "max_bodies": max_bodies, "dropped_occurrences": dropped}


def parse_ntu(path: str | os.PathLike, *, bodies: str = "denoise", max_bodies: int = 2,
              text: str | None = None, max_abs: float = bounds.METRIC_MAX_ABS,
              image_margin: float = bounds.IMAGE_MARGIN) -> SkeletonRecord:
  """Reads an NTU RGB+D `.skeleton` file.

  Args:
    path: the file.
    bodies: 'denoise' (standard NTU actor selection, see the module docstring)
      or 'first' (first `max_bodies` bodies of each frame).
    max_bodies: at most this many actors are kept ('denoise' always keeps <= 2).
    text: the file's content if already read (then `path` only names it).
    max_abs: bound on |x|, |y|, |z| in metres (`skel_llm.skeleton.bounds`).
    image_margin: bound on the depth / colour pixel fields, in image sizes
      beyond each edge (see `read_ntu_raw`).

  Returns:
    A record with positions float32[T, P, 25, 3] in Kinect camera metres
    (P = number of actors found, 1 or 2), valid 1 where an actor is present,
    and metadata: setup/camera/subject/replication/action (1-based)/label
    (0-based), tracking_state int8[T, P, 25], bodies_per_frame int32[T],
    body_ids per actor, body_selection.
  """
  path = os.fspath(path)
  raw = read_ntu_raw(path, text, max_abs=max_abs, image_margin=image_margin)
  if bodies == "denoise":
    if max_bodies != 2:
      raise ValueError("bodies='denoise' selects at most 2 actors; use bodies='first' for others")
    slots, info = _select_denoise(raw) if raw["body_id"] else ([], {"method": "denoise"})
  elif bodies == "first":
    slots, info = _select_first(raw, max_bodies)
  else:
    raise ValueError(f"bodies must be 'denoise' or 'first', got {bodies!r}")
  t = raw["num_frames"]
  p = max(len(slots), 1)
  positions = np.zeros((t, p, NUM_JOINTS, 3), np.float32)
  valid = np.zeros((t, p, NUM_JOINTS), np.float32)
  tracking = np.zeros((t, p, NUM_JOINTS), np.int8)
  for s, occ in enumerate(slots):
    occ = np.asarray(occ, np.int64)
    fr = raw["frame"][occ]
    if len(np.unique(fr)) != len(fr):
      order = np.argsort(fr, kind="stable")
      second = occ[order][1:][np.diff(fr[order]) == 0][0]
      raise SkeletonFormatError(path, int(raw["header_line"][second]), f"actor {s} holds two "
                                f"bodies in frame {fr[occ == second][0] + 1}; expected distinct "
                                "body IDs within a frame")
    positions[fr, s] = bounds.to_float32(
        raw["joints"][occ, :, :3], path=path, what="joint coordinate",
        where=lambda idx, occ=occ: (int(raw["header_line"][occ[idx[0]]]) + 2 + idx[1],
                                    f"field {idx[2] + 1}"))
    valid[fr, s] = 1.0
    tracking[fr, s] = raw["joints"][occ, :, 11].astype(np.int8)
  empty = int((raw["bodies_per_frame"] == 0).sum())
  info["empty_frames"] = empty
  meta = parse_name(path)
  meta.update({
      "file_format": "ntu_skeleton",
      "body_selection": info,
      "bodies_per_frame": raw["bodies_per_frame"],
      "tracking_state": tracking,
  })
  return SkeletonRecord(positions=positions, valid=valid, format="ntu25", fps=FPS, is_2d=False,
                        metadata=meta, source=path)


# ---------------------------------------------------------------------------------------------
# The official lists of samples with missing or incomplete skeletons.

def read_missing_skeletons(path: str | os.PathLike) -> frozenset[str]:
  """Sample names of an official `NTU_RGBD*_samples_with_missing_skeletons.txt` list.

  The file opens with a sentence giving the count ("302 of the captured
  samples ..."); the number of names must match it.
  """
  path = os.fspath(path)
  text = files.read_text(path)
  lines = text.splitlines()
  if not lines:
    raise SkeletonFormatError(path, 1, "empty file: expected '<N> of the captured samples ...'")
  m = re.match(r"\s*(\d+) of the captured samples", lines[0])
  if m is None:
    raise SkeletonFormatError(path, 1, "expected a header '<N> of the captured samples ...'")
  expected = int(m.group(1))
  names = []
  for k, line in enumerate(lines[1:], start=2):
    s = line.strip()
    if _NAME_RE.fullmatch(s):
      names.append(s)
    elif s and names:
      raise SkeletonFormatError(path, k, f"expected a sample name SsssCcccPpppRrrrAaaa, got {s!r}")
  if len(names) != expected or len(set(names)) != expected:
    raise SkeletonFormatError(path, None, f"header promises {expected} sample names, found "
                              f"{len(names)} ({len(set(names))} distinct)")
  return frozenset(names)


def filter_missing(paths: Iterable[str | os.PathLike], missing: frozenset[str], *,
                   list_name: str = "missing-skeleton list",
                   logger: logging.Logger | None = None) -> list[str]:
  """Paths whose sample name is not in `missing`; logs how many were skipped."""
  paths = [os.fspath(p) for p in paths]
  kept = []
  for p in paths:
    m = _NAME_RE.search(os.path.basename(p))
    if m is not None and m.group(0) in missing:
      continue
    kept.append(p)
  (logger or logging.getLogger(__name__)).info(
      "NTU: skipped %d of %d samples listed in %s (%d names in the list)",
      len(paths) - len(kept), len(paths), list_name, len(missing))
  return kept
