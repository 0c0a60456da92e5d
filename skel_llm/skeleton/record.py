"""`SkeletonRecord`: the normalised in-memory form of any skeleton file."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass
class SkeletonRecord:
  """One skeleton sequence in a registry topology.

  Attributes:
    positions: float32[T, P, J, 3] joint positions (2D formats: z = 0).
    valid: float32[T, P, J] per-joint confidence in [0, 1]; 0 marks a joint
      (or a whole absent person) that carries no data.
    format: name of the topology in `skel_llm.skeleton.topology`.
    fps: frames per second of `positions`.
    is_2d: True when z carries no data.
    metadata: file-level facts (NTU setup/camera/subject/replication/action,
      labels, captions, body choice, ...).
    source: path of the file it came from ('' for generated data).
  """

  positions: np.ndarray
  valid: np.ndarray
  format: str
  fps: float
  is_2d: bool = False
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
  source: str = ""

  def __post_init__(self):
    pos = np.asarray(self.positions)
    if pos.ndim != 4 or pos.shape[-1] != 3:
      raise ValueError(f"{self.source or '<record>'}: positions must be [T, P, J, 3], got {pos.shape}")
    if tuple(np.shape(self.valid)) != pos.shape[:3]:
      raise ValueError(
          f"{self.source or '<record>'}: valid must be {pos.shape[:3]}, got {np.shape(self.valid)}")
    self.positions = pos.astype(np.float32, copy=False)
    self.valid = np.asarray(self.valid, np.float32)

  @property
  def num_frames(self) -> int:
    return self.positions.shape[0]

  @property
  def num_persons(self) -> int:
    return self.positions.shape[1]

  @property
  def num_joints(self) -> int:
    return self.positions.shape[2]

  @property
  def topology(self):
    """The record's `Topology`: `metadata['topology']` (BVH) or the registry entry."""
    from skel_llm.skeleton import topology as topology_lib
    topo = self.metadata.get("topology")
    return topo if topo is not None else topology_lib.get(self.format)

  def with_persons(self, num_persons: int) -> "SkeletonRecord":
    """A copy with exactly `num_persons` person slots.

    Extra slots are added as absent persons (zeros, valid 0); asking for fewer
    slots than the record holds raises instead of dropping anyone.
    """
    p = self.num_persons
    if num_persons < p:
      raise ValueError(f"{self.source or '<record>'}: holds {p} persons; refusing to drop "
                       f"{p - num_persons} to fit {num_persons}")
    pad = ((0, 0), (0, num_persons - p), (0, 0))
    return dataclasses.replace(
        self, positions=np.pad(self.positions, pad + ((0, 0),)), valid=np.pad(self.valid, pad),
        metadata=dict(self.metadata))
