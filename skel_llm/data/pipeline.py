"""The input pipeline: clips -> stage-specific conversations -> fixed-shape batches.

Determinism and resumption: the sample at global position g (= step *
global_batch + slot) is a pure function of (seed, g): the epoch's permutation
is drawn from `default_rng([seed, epoch])` and the sample's own choices
(candidate order, YES/NO question) from `default_rng([seed, 1, g])`. The
saved position is therefore just the next step; a resumed run reads exactly
the batches the uninterrupted run would have read. Each host builds only its
slice of the global batch (the rows its devices hold), so nothing is read twice.

Batch (per host, B = its rows, global_batch / process_count; L tokens; T frames):
  positions  float32[B, T, P, J, 3]  full-rate skeleton, zero-padded in time and persons
  num_frames int32[B]                valid length of each sequence
  input_ids  int32[B, L]; input_mask int32[B, L]; loss_mask float32[B, L]
  label      int32[B]                index of the true class in `class_names`
  topology   int32[B]                mixed-format training only (`config.data.topologies`): each
                                     row's index into the topologies; `positions` is then
                                     zero-padded to the largest joint count J of the mixture
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from typing import Any, Callable, Sequence

import numpy as np

from skel_llm import fs
from skel_llm.data import sources as sources_lib
from skel_llm.text import encode as encode_lib
from skel_llm.text import prompts

log = logging.getLogger(__name__)


Clip = sources_lib.Clip


def load_confusable(path: str, class_names: Sequence[str]) -> dict[int, list[int]]:
  """Top-k confusable classes per class from a JSON {name: [names...]} file.

  Names are compared after `skel_llm.text.answers.normalise`; a name that is in
  neither the file's keys nor `class_names` raises, naming the entry.
  """
  from skel_llm.text.answers import normalise
  table = json.loads(fs.read_text(path))  # local or gs://
  index = {normalise(n): i for i, n in enumerate(class_names)}
  out: dict[int, list[int]] = {}
  for key, names in table.items():
    if normalise(key) not in index:
      raise ValueError(f"{path}: class {key!r} is not one of the {len(class_names)} class names")
    row = []
    for n in names:
      if normalise(n) not in index:
        raise ValueError(f"{path}: entry {key!r} lists {n!r}, which is not a class name")
      row.append(index[normalise(n)])
    out[index[normalise(key)]] = row
  return out


def confusable_by_names(class_names: Sequence[str], k: int = 5) -> dict[int, list[int]]:
  """Computed fallback: the k classes whose names share most words (then characters)."""
  words = [set(n.lower().replace("/", " ").split()) for n in class_names]
  out = {}
  for i, wi in enumerate(words):
    scores = []
    for j, wj in enumerate(words):
      if i == j:
        continue
      inter = len(wi & wj) / max(1, len(wi | wj))
      chars = len(set(class_names[i]) & set(class_names[j])) / 100.0
      scores.append((-(inter + chars), j))
    out[i] = [j for _, j in sorted(scores)[:k]]
  return out


def parse_task_mix(spec: str) -> list[tuple[str, float]]:
  """`config.data.task`: one task ('reason') or a weighted mixture ('reason:0.5,caption:0.25,
  qa:0.25'); weights are normalised to sum to 1. Raises naming the bad entry."""
  out = []
  for part in str(spec).split(","):
    part = part.strip()
    name, _, weight = part.partition(":")
    name = name.strip()
    if name not in prompts.TASKS and "," not in str(spec) and ":" not in str(spec):
      raise ValueError(f"config.data.task {spec!r} is unknown; use one of {prompts.TASKS}, or "
                       f"a mixture 'task:weight,task:weight'")
    if name not in prompts.TASKS:
      raise ValueError(f"config.data.task {spec!r}: task {name!r} is unknown; known: "
                       f"{prompts.TASKS} (a mixture is 'task:weight,task:weight')")
    try:
      w = float(weight) if weight else 1.0
    except ValueError:
      raise ValueError(f"config.data.task {spec!r}: weight {weight!r} of {name!r} is not a "
                       f"number") from None
    if not w > 0:
      raise ValueError(f"config.data.task {spec!r}: weight of {name!r} must be positive")
    if any(n == name for n, _ in out):
      raise ValueError(f"config.data.task {spec!r} names {name!r} twice")
    out.append((name, w))
  total = sum(w for _, w in out)
  return [(n, w / total) for n, w in out]


class MixtureBuilder:
  """A weighted mixture of `ConversationBuilder`s: each sample's task is drawn from its rng
  (so it is a pure function of (seed, position), like every other choice of a sample)."""

  def __init__(self, builders: Sequence["ConversationBuilder"], weights: Sequence[float]):
    self.builders = list(builders)
    self.cum = np.cumsum(np.asarray(weights, np.float64))
    self.task = ",".join(b.task for b in self.builders)
    self.num_frames = self.builders[0].num_frames

  @staticmethod
  def serves(task: str, clip: Clip) -> bool:
    """Whether a clip has what `task` needs (QA questions, captions); other tasks always."""
    if task == "qa":
      return bool(clip.qa)
    if task == "caption":
      return bool(clip.captions)
    return True

  def __call__(self, clip: Clip, rng: np.random.Generator | None) -> tuple[str, str]:
    if rng is None:
      return self.builders[0](clip, None)
    # A clip that a drawn task cannot serve (a two-person clip has no QA questions) is drawn
    # again among the tasks that can, with their weights; a clip no task serves raises there.
    ok = np.asarray([self.serves(b.task, clip) for b in self.builders])
    weights = np.diff(np.concatenate([[0.0], self.cum])) * ok
    if not weights.any():
      return self.builders[0](clip, rng)
    cum = np.cumsum(weights)
    k = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
    return self.builders[min(k, len(self.builders) - 1)](clip, rng)


class ConversationBuilder:
  """Turns a clip into (user message, answer) for one stage task."""

  def __init__(self, task: str, class_names: Sequence[str], candidate_ids: Sequence[int],
               num_frames: int, *, confusable: dict[int, list[int]] | None = None,
               reason_with_candidates: bool = True):
    if task not in prompts.TASKS:
      raise ValueError(f"config.data.task {task!r} is unknown; known: {prompts.TASKS}")
    self.task = task
    self.class_names = list(class_names)
    self.candidate_ids = list(candidate_ids)
    self.num_frames = num_frames
    self.confusable = confusable
    self.reason_with_candidates = reason_with_candidates
    if task == "yesno" and confusable is None:
      self.confusable = confusable_by_names(self.class_names)

  def __call__(self, clip: Clip, rng: np.random.Generator | None) -> tuple[str, str]:
    if self.task == "caption":
      return self._caption(clip, rng)
    if self.task == "qa":
      return self._qa(clip, rng)
    names = self.class_names
    if clip.label not in self.candidate_ids:
      raise ValueError(f"clip {clip.key!r}: label {names[clip.label]!r} is not among the "
                       f"candidate classes of this split")
    order = list(self.candidate_ids)
    if rng is not None:
      order = [order[i] for i in rng.permutation(len(order))]
    cands = [names[i] for i in order]
    if self.task == "mqa":
      return (prompts.mqa_question(self.num_frames, cands), prompts.mqa_answer(names[clip.label]))
    if self.task == "yesno":
      rng = rng or np.random.default_rng(0)
      seen = set(self.candidate_ids)
      negatives = [j for j in self.confusable.get(clip.label, []) if j in seen and j != clip.label]
      if not negatives:
        negatives = [j for j in self.candidate_ids if j != clip.label]
      positive = bool(rng.random() < 0.5) or not negatives
      asked = clip.label if positive else negatives[int(rng.integers(len(negatives)))]
      return (prompts.yesno_question(self.num_frames, names[asked]), prompts.yesno_answer(positive))
    if clip.rationale is None:
      raise ValueError(f"clip {clip.key!r}: the reason task needs a rationale (config.data."
                       f"rationales, or the synthetic generator's descriptions)")
    return (prompts.reason_question(self.num_frames, cands if self.reason_with_candidates else None),
            prompts.reason_answer(clip.rationale))


  def _caption(self, clip: Clip, rng: np.random.Generator | None) -> tuple[str, str]:
    caps = [c for c in (clip.captions or ()) if c and c.strip()]
    if not caps:
      raise ValueError(f"clip {clip.key!r} has no caption: the caption task needs reference "
                       f"captions (HumanML3D texts/<id>.txt next to new_joints/, or the "
                       f"synthetic generator's descriptions)")
    # One reference per sample; a training sample's rng differs per epoch, so each epoch
    # may see another of the clip's captions. Evaluation (rng None) prompts only.
    pick = caps[int(rng.integers(len(caps)))] if rng is not None else caps[0]
    return prompts.caption_question(self.num_frames), prompts.caption_answer(pick)

  def _qa(self, clip: Clip, rng: np.random.Generator | None) -> tuple[str, str]:
    items = clip.qa or ()
    if not items:
      raise ValueError(f"clip {clip.key!r} has no QA questions (two-person synthetic classes "
                       f"have none; the 'qa' config of synthetic_actions holds only clips "
                       f"with questions)")
    item = items[int(rng.integers(len(items)))] if rng is not None else items[0]
    return (prompts.qa_question(self.num_frames, item.question, item.options),
            prompts.qa_answer(item.options, item.answer))


class Pipeline:
  """Deterministic, resumable, per-host batches of one split.

  Args:
    source: random-access clips (`skel_llm.data.sources`).
    builder: the stage's `ConversationBuilder`.
    encoder: chat template + tokenizer (`skel_llm.text.encode.ConversationEncoder`).
    global_batch: samples per step over all hosts.
    max_frames: T of `positions`; a longer clip raises.
    max_persons: P of `positions`.
    seed: data seed.
    shuffle: permute each epoch (training) or read in order (evaluation).
    with_answer: append the answer (training) or stop at the prompt (generation).
    process_index, process_count: this host's slice (the process_index-th of
      process_count equal runs of slots) unless `rows` is given.
    rows: the global-batch slots this host reads, in order (the trainer takes them
      from the batch sharding: `skel_llm.train.sharding.process_batch_rows`).
  """

  def __init__(self, source: sources_lib.ClipSource, builder: ConversationBuilder,
               encoder: encode_lib.ConversationEncoder, *, global_batch: int, max_frames: int,
               max_persons: int, seed: int, shuffle: bool = True, with_answer: bool = True,
               process_index: int = 0, process_count: int = 1,
               rows: Sequence[int] | None = None, topologies: Sequence[str] | None = None):
    if rows is None:
      if global_batch % process_count:
        raise ValueError(f"config.batch_size {global_batch} is not divisible by the "
                         f"{process_count} hosts")
      local = global_batch // process_count
      rows = range(process_index * local, (process_index + 1) * local)
    rows = [int(r) for r in rows]
    if not rows or any(not 0 <= r < global_batch for r in rows) or len(set(rows)) != len(rows):
      raise ValueError(f"batch rows {rows} of this host must be distinct slots of the global "
                       f"batch of {global_batch}; check config.batch_size and config.mesh")
    if len(source) == 0:
      raise ValueError(f"data source {source.name} is empty")
    self.source, self.builder, self.encoder = source, builder, encoder
    self.global_batch, self.seed, self.shuffle = global_batch, seed, shuffle
    self.max_frames, self.max_persons = max_frames, max_persons
    self.with_answer = with_answer
    self.rows = rows
    self.local_batch = len(rows)
    # Mixed-format batches: each row's topology index, joints padded to the largest count.
    self.topologies = tuple(topologies) if topologies else None
    if self.topologies:
      from skel_llm.skeleton import topology as topology_lib
      self.num_joints = max(topology_lib.get(t).num_joints for t in self.topologies)
    self._perm_cache: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return len(self.source)

  def _index(self, g: int) -> int:
    n = len(self.source)
    epoch, pos = divmod(g, n)
    if not self.shuffle:
      return pos
    perm = self._perm_cache.get(epoch)
    if perm is None:
      perm = np.random.default_rng([self.seed, epoch]).permutation(n)
      self._perm_cache = {epoch: perm}
    return int(perm[pos])

  def sample(self, g: int) -> dict[str, np.ndarray]:
    """The sample at global position g as numpy arrays (see the module docstring)."""
    clip = self.source[self._index(g)]
    rng = np.random.default_rng([self.seed, 1, g]) if self.shuffle else None
    user, answer = self.builder(clip, rng)
    enc = self.encoder.encode(user, answer if self.with_answer else None)
    pos = np.asarray(clip.positions, np.float32)
    t, p = pos.shape[:2]
    if t > self.max_frames:
      raise ValueError(f"clip {clip.key!r} has {t} frames but config.data.max_frames is "
                       f"{self.max_frames}; raise it")
    if p > self.max_persons:
      raise ValueError(f"clip {clip.key!r} has {p} persons but config.data.max_persons is "
                       f"{self.max_persons}")
    extra = {}
    if self.topologies:
      if clip.topology not in self.topologies:
        raise ValueError(f"clip {clip.key!r}: topology {clip.topology!r} is not one of "
                         f"config.data.topologies {self.topologies}")
      from skel_llm.render import mixed
      pos = mixed.pad_joints(pos, self.num_joints)
      extra["topology"] = np.int32(self.topologies.index(clip.topology))
    padded = np.zeros((self.max_frames, self.max_persons) + pos.shape[2:], np.float32)
    padded[:t, :p] = pos
    return dict(positions=padded, num_frames=np.int32(t), input_ids=enc.input_ids,
                input_mask=enc.input_mask, loss_mask=enc.loss_mask, label=np.int32(clip.label),
                **extra)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's part (`self.rows`) of the global batch of `step`."""
    first = step * self.global_batch
    samples = [self.sample(first + r) for r in self.rows]
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}

  def iterate(self, start_step: int, num_steps: int, prefetch: int = 2):
    """Yields (step, batch) for steps [start_step, start_step + num_steps), built ahead in threads."""
    if prefetch <= 0:
      for s in range(start_step, start_step + num_steps):
        yield s, self.batch(s)
      return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
      pending: list[tuple[int, concurrent.futures.Future]] = []
      nxt = start_step
      end = start_step + num_steps
      while nxt < end or pending:
        while nxt < end and len(pending) < prefetch:
          pending.append((nxt, pool.submit(self.batch, nxt)))
          nxt += 1
        s, fut = pending.pop(0)
        yield s, fut.result()


def make_pipeline(data_cfg: Any, split: str, *, encoder: encode_lib.ConversationEncoder,
                  global_batch: int, seed: int, training: bool, num_frames: int,
                  process_index: int = 0, process_count: int = 1,
                  rows: Sequence[int] | None = None,
                  source_factory: Callable[..., sources_lib.ClipSource] | None = None
                  ) -> tuple[Pipeline, sources_lib.ClipSource]:
  """A `Pipeline` for `config.data` and `split` ('train' or 'eval')."""
  factory = source_factory or sources_lib.make_source
  source = factory(data_cfg, split)
  spec = data_cfg.task if training else data_cfg.get("eval_task", "mqa")
  mix = parse_task_mix(spec)
  builders = []
  for task, _ in mix:
    confusable = None
    if task == "yesno" and data_cfg.get("confusable_file"):
      path = data_cfg.confusable_file
      if not fs.exists(path):  # local or gs://
        raise FileNotFoundError(f"config.data.confusable_file {path} does not exist")
      confusable = load_confusable(path, source.class_names)
    builders.append(ConversationBuilder(
        task, source.class_names, source.candidate_ids, num_frames, confusable=confusable,
        reason_with_candidates=data_cfg.get("reason_with_candidates", True)))
  builder = builders[0] if len(builders) == 1 else MixtureBuilder(builders, [w for _, w in mix])
  pipe = Pipeline(source, builder, encoder, global_batch=global_batch,
                  max_frames=data_cfg.max_frames, max_persons=data_cfg.max_persons, seed=seed,
                  shuffle=training, with_answer=training, process_index=process_index,
                  process_count=process_count, rows=rows,
                  topologies=getattr(source, "topologies", None))
  return pipe, source
