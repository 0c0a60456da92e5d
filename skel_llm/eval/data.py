"""An evaluator's own data: its source, its prompt, its batches, and skeleton corruptions.

An evaluator's `data` options override `config.data` for its evaluation split only
(`skel_llm.eval.options.DATA_KEYS`; an empty value keeps the run's). Batches are read in order
(no shuffling), frames are the segment midpoints and every random choice is seeded, so two evaluations of one state are
bitwise equal. Each host reads only the rows of each batch that its devices hold.

Corruptions (the robustness evaluator; applied to the skeleton before rendering, on the
placed camera-space joints, only on present persons and real frames):
- `dropout` p: each (frame, person, joint) is dropped with probability p; a dropped joint is
  moved onto its parent in the topology's tree (the root stays), so the bones it ends vanish
  instead of being drawn towards a made-up position. How the rebuttal represents a dropped
  joint is not stated; this is our choice.
- `noise` sigma (cm): isotropic Gaussian noise of that standard deviation on every joint.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from skel_llm.data import pipeline as pipeline_lib
from skel_llm.eval import options
from skel_llm.skeleton import topology as topology_lib
from skel_llm.text import prompts

CORRUPTIONS = ("dropout", "noise")


def data_config(run_data: Any, overrides: Any, *, num_clips: int, prompt: str) -> Any:
  """A copy of `config.data` with the evaluator's overrides, its prompt task and clip count."""
  d = copy.deepcopy(run_data)
  unlocked = d.unlocked() if hasattr(d, "unlocked") else None
  if unlocked is not None:
    unlocked.__enter__()
  try:
    overridden = set()
    for key, value in dict(overrides or {}).items():
      if key not in options.DATA_KEYS:
        raise ValueError(f"evaluator data option {key!r} is unknown; known: "
                         f"{options.DATA_KEYS}")
      if value in options.KEEP:
        continue
      if key == "class_split":
        _seen_classes(d, value)
        continue
      d[key] = value
      overridden.add(key)
    if d.get("crossformat"):
      from skel_llm.data import crossformat
      crossformat.resolve(d, overridden)
    d.eval_task = prompt
    if d.source == "synthetic":
      d.num_eval_clips = int(num_clips)
  finally:
    if unlocked is not None:
      unlocked.__exit__(None, None, None)
  return d


def _seen_classes(d: Any, value: Any) -> None:
  """`class_split="seen"`: the evaluation split of a zero-shot run drawn from its training
  classes (other generator seeds than training's), with those as the candidates."""
  if value not in options.CLASS_SPLITS:
    raise ValueError(f"evaluator data option class_split={value!r}: expected one of "
                     f"{options.CLASS_SPLITS} ('' keeps the run's evaluation classes)")
  if d.get("source") != "synthetic":
    raise ValueError(f"evaluator data option class_split='seen' needs config.data.source "
                     f"'synthetic' (its class lists); the source is {d.get('source')!r}: a "
                     f"dataset's seen-class split is its protocol (data.protocol)")
  if not d.get("eval_classes"):
    raise ValueError("evaluator data option class_split='seen': config.data.eval_classes is "
                     "empty, so the run already evaluates on its training classes")
  d.eval_classes = ()


def parents(topology_name: str) -> np.ndarray:
  """int[J] parent of each joint in the bone tree rooted at the topology's root (root: itself)."""
  topo = topology_lib.get(topology_name)
  j = len(topo.joint_names)
  parent = np.full(j, -1, np.int64)
  parent[topo.root] = topo.root
  frontier = [topo.root]
  while frontier:
    nxt = []
    for a in frontier:
      for u, v in topo.bones:
        for x, y in ((u, v), (v, u)):
          if x == a and parent[y] < 0:
            parent[y] = a
            nxt.append(y)
    frontier = nxt
  parent[parent < 0] = np.nonzero(parent < 0)[0]  # joints no bone reaches stay put
  return parent


def corrupt(positions: np.ndarray, num_frames: np.ndarray, kind: str, level: float,
            rng: np.random.Generator, parent: np.ndarray) -> np.ndarray:
  """float32[B, T, P, J, 3] with `kind` at `level` applied to real frames of present persons."""
  if kind not in CORRUPTIONS:
    raise ValueError(f"corruption {kind!r} is unknown; known: {CORRUPTIONS}")
  pos = np.array(positions, np.float32, copy=True)
  b, t, p, j, _ = pos.shape
  real = (np.arange(t)[None, :] < np.asarray(num_frames)[:, None])[:, :, None]  # [B, T, 1]
  present = np.any(pos != 0, axis=(-1, -2)) & real  # [B, T, P]
  if kind == "noise":
    noise = rng.normal(0.0, level / 100.0, pos.shape).astype(np.float32)
    return np.where(present[..., None, None], pos + noise, pos)
  drop = (rng.random((b, t, p, j)) < level) & present[..., None]
  # Parents are moved first when they drop too: walk from the root outwards, taking each
  # dropped joint to its parent's (possibly already moved) position.
  order = _tree_order(parent)
  for joint in order:
    if parent[joint] == joint:
      continue
    sel = drop[..., joint]
    pos[..., joint, :] = np.where(sel[..., None], pos[..., parent[joint], :],
                                  pos[..., joint, :])
  return pos


def _tree_order(parent: np.ndarray) -> list[int]:
  depth = np.zeros(len(parent), np.int64)
  for i in range(len(parent)):
    k, d = i, 0
    while parent[k] != k and d <= len(parent):
      k, d = parent[k], d + 1
    depth[i] = d
  return [int(i) for i in np.argsort(depth, kind="stable")]


class EvalData:
  """The in-order, per-host batches of one evaluator's split.

  Attributes:
    source: the clip source (`skel_llm.data.sources`).
    pipe: its pipeline (prompt without the answer).
    num_clips: clips that count (the last batch is filled up from the start; those rows are
      computed and discarded).
    candidates: the candidate class names, in the prompt's order.
    candidate_ids: their labels in `source.class_names`.
  """

  def __init__(self, config: Any, ev: Any, encoder: Any, *, prompt: str, rows: list[int],
               needs_candidates: bool = True):
    self.data_cfg = data_config(config.data, ev.get("data", {}), num_clips=ev.num_clips,
                                prompt=prompt)
    self.batch_size = int(ev.batch_size)
    self.pipe, self.source = pipeline_lib.make_pipeline(
        self.data_cfg, "eval", encoder=encoder, global_batch=self.batch_size,
        seed=self.data_cfg.seed, training=False, num_frames=config.render.num_frames,
        rows=rows)
    self.num_clips = min(int(ev.num_clips), len(self.source))
    self.candidate_ids = list(self.source.candidate_ids)
    if not self.candidate_ids and needs_candidates:
      raise ValueError(f"evaluator data {self.source.name}: the candidate list is empty")
    self.candidates = [self.source.class_names[i] for i in self.candidate_ids]
    # A BVH folder's skeleton is registered by its source.
    self.topology = getattr(self.source, "topology", None) or self.data_cfg.topology
    self.prompt = prompt
    self.num_steps = -(-self.num_clips // self.batch_size)

  def two_person(self) -> set[int] | None:
    """Candidate indices of two-person classes, when the source's dataset defines them."""
    labels = getattr(self.source, "two_person_labels", None)
    if labels is None:
      return None
    return {i for i, c in enumerate(self.candidate_ids) if c in set(labels)}

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's rows of batch `step`: the pipeline's arrays plus `candidate` (the truth's
    index among the candidates), `persons` and `index` (global clip position)."""
    b = self.pipe.batch(step)
    pos_of = {c: i for i, c in enumerate(self.candidate_ids)}
    # -1: a clip whose label is not a candidate (label-less captioning data).
    b["candidate"] = np.asarray([pos_of.get(int(x), -1) for x in b["label"]], np.int32)
    b["persons"] = np.any(b["positions"] != 0, axis=(1, 3, 4)).sum(axis=1).astype(np.int32)
    b["index"] = np.asarray([step * self.batch_size + r for r in self.pipe.rows], np.int32)
    return b

  def clip(self, index: int):
    """The source clip at global evaluation position `index` (in-order reading)."""
    return self.source[self.pipe._index(int(index) % len(self.source))]

  def question(self, asked: str) -> str:
    """A YES/NO question about one class (the Disc-FT prompt)."""
    return prompts.yesno_question(self.pipe.builder.num_frames, asked)
