"""The pretraining corpus of the embedded MLLM: stick-figure clips with captions and questions.

Sample g of the corpus (a pure function of g and `CorpusSpec`):
  clip     `synthetic.generate_clip(classes[g % C], seed_base + g)`: every sample a new clip,
           so the data is defined by the class list and the seed range
           [seed_base, seed_base + steps x batch);
  picture  `render.sticks.render` of the clip in the style `draw_style((style_seed, g))`,
           or its `plain_style` with probability `plain_fraction` (drawn with
           `default_rng([style_seed, g, PLAIN_STREAM])`);
  task     drawn with `default_rng([task_seed, g])` from `tasks` (uniformly, or by
           `task_weights`; samples below `first_samples` from `first_tasks`), answered from
           the generator's ground truth:
    caption  "Describe the motion..."  -> one of the clip's reference captions (the
             generator's part-by-part description without its viewpoint line and label)
    choice   "Which action is performed? Candidates: ..." (the true class and 3-7 other
             pretraining classes, shuffled) -> "Label: <class name>"
    yesno    "Is the action '<X>'?" (X the true class or another pretraining class, 1:1)
             -> "YES" / "NO"
    reason   "Describe how the body moves, part by part, ... end with 'Label: <action>'"
             -> the generator's whole description, ending "Label: <class name>"
    part     "Which body part moves?"  -> "Part: <arm|leg|hand|torso|head|body>"
    side     "Which side..."           -> "Side: <left|right|both|neither>"
    updown   "...up or down?"          -> "Direction: <up|down>", from the joints: the joint
             that moves farthest from its first-frame position, at its farthest frame

Classes (why these, docs in README "A pretrained MLLM for the embedded world"): every
single-person synthetic class except `EXCLUDED`, the unseen verb/part combinations of the
`synthetic_compositional` protocol (`synthetic.compositional_split(0)`), which are also the
held-out (unseen) classes of the `demo_pretrained` stage presets. So no pretraining caption,
name or question ever shows or names an unseen class: the words of an unseen name ("raise",
"left", "leg") each occur, never the combination's motion or label. Two-person classes are
left out (the stick family draws one figure per person but the questions are about one
body). Seeds: `SEED_BASE` = 20,000,000 + i, disjoint from the stage runs' training seeds
(0 + i) and evaluation seeds (10,000,000 + i).

The committed asset's recipe (`skel_llm.pretrain.builder.default_config`) asks only `choice`
about plain clips (`plain_fraction` 1): every mix with the other tasks that was tried left
the build's answers independent of the pictures (README, "A pretrained MLLM for the embedded
world"). The other tasks stay defined for recipes that try again (`--config.corpus.tasks`,
`task_weights`, `first_samples` / `first_tasks`).

The prompt is the stage runs' chat template with its own opening (stick figures, not
DrAction's "colours encode depth and motion"). `choice`, `yesno` and `reason` end with the
stage prompts' instructions (`skel_llm.text.prompts`) over pretraining classes only: they
stand in for InternVL3's instruction tuning, without which a frozen LLM cannot answer the
stages' formats (measured: stage 1 from an asset pretrained without them stayed at 0 % strict,
chance likelihood ranking). Skeleton-QA's templates are not used, so the `qa` benchmark
stays unseen too.
"""

from __future__ import annotations

import dataclasses
import numpy as np

from skel_llm import synthetic
from skel_llm.render import camera, sticks
from skel_llm.synthetic import captions as captions_lib
from skel_llm.text import chat

TASKS = ("caption", "choice", "yesno", "reason", "part", "side", "updown")
PARTS = ("arm", "leg", "hand", "torso", "head", "body")
SIDES = ("left", "right", "both", "neither")
SEED_BASE = 20_000_000
PLAIN_STREAM = 3  # the rng stream that picks a sample's plain or family style

EXCLUDED: tuple[str, ...] = tuple(synthetic.CLASS_NAMES[i]
                                  for i in synthetic.compositional_split(0)[1])
PRETRAIN_CLASSES: tuple[str, ...] = tuple(
    c.name for c in synthetic.CLASSES if c.persons == 1 and c.name not in EXCLUDED)

_INTRO = "The {n} frames above are drawings of a moving stick figure, in time order."


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """What defines the corpus (recorded in the asset's provenance)."""

  classes: tuple[str, ...] = PRETRAIN_CLASSES
  seed_base: int = SEED_BASE
  style_seed: int = 1
  task_seed: int = 2
  tasks: tuple[str, ...] = TASKS
  num_frames: int = 6
  image_size: int = 32
  clip_frames: int = 48
  knobs: dict = dataclasses.field(default_factory=dict)
  plain_fraction: float = 0.0  # share of clips drawn in `sticks.plain_style`
  # One weight per task (the odds a sample asks it); () draws the tasks uniformly.
  task_weights: tuple[float, ...] = ()
  # Samples 0 .. first_samples - 1 ask only `first_tasks` (uniformly): a curriculum that
  # grounds the answers in the pictures before the long text tasks join (README, "A pretrained
  # MLLM for the embedded world").
  first_samples: int = 0
  first_tasks: tuple[str, ...] = ()

  def __post_init__(self):
    bad = [c for c in self.classes if c in EXCLUDED]
    if bad:
      raise ValueError(f"pretraining classes {bad} are unseen classes of the compositional "
                       f"protocol (corpus.EXCLUDED); leave them out")
    unknown = [c for c in self.classes if c not in synthetic.CLASS_NAMES]
    if unknown:
      raise ValueError(f"pretraining classes {unknown} are not synthetic classes")
    if not self.classes:
      raise ValueError("the pretraining corpus needs at least one class")
    if not 0.0 <= self.plain_fraction <= 1.0:
      raise ValueError(f"plain_fraction {self.plain_fraction}: expected a share in [0, 1]")
    w = self.task_weights
    if w and (len(w) != len(self.tasks) or min(w) < 0 or sum(w) <= 0):
      raise ValueError(f"task_weights {tuple(w)}: expected {len(self.tasks)} weights >= 0, one "
                       f"per task of {tuple(self.tasks)}, not all 0")
    if self.first_samples < 0 or (self.first_samples > 0) != bool(self.first_tasks):
      raise ValueError(f"first_samples {self.first_samples} with first_tasks "
                       f"{tuple(self.first_tasks)}: give both (samples > 0) or neither")
    bad_tasks = [t for t in (*self.tasks, *self.first_tasks) if t not in TASKS]
    if bad_tasks or not self.tasks:
      raise ValueError(f"pretraining tasks {bad_tasks or '()'}: use some of {TASKS}")


def _frames(n: int) -> str:
  return "".join(f"Frame{i + 1}: {chat.IMAGE_PLACEHOLDER}\n" for i in range(n))


def moving_direction(positions: np.ndarray) -> str:
  """'up' or 'down': where the joint farthest from its first-frame position goes (y up).

  positions: float32[T, J, 3] of one person (all joints present).
  """
  disp = positions - positions[:1]
  dist = np.linalg.norm(disp, axis=-1)  # [T, J]
  t, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
  return "up" if disp[t, j, 1] > 0 else "down"


def choice_question(n: int, candidates) -> str:
  """The `choice` task's user message over `n` frames (also the asset probe's)."""
  return (_frames(n) + _INTRO.format(n=n) + f"\nWhich action is performed? Candidates: "
          f"{'; '.join(candidates)}.\nReply with exactly one candidate as 'Label: <action>'.")


def style(spec: CorpusSpec, style_seed) -> sticks.StickStyle:
  """The stick style of `style_seed` (an int or a tuple of ints): `draw_style(style_seed)`,
  plain with probability `spec.plain_fraction`."""
  drawn = sticks.draw_style(style_seed)
  if spec.plain_fraction <= 0.0:
    return drawn
  entropy = [int(x) for x in np.atleast_1d(style_seed)] + [PLAIN_STREAM]
  plain = np.random.default_rng(entropy).random() < spec.plain_fraction
  return sticks.plain_style(drawn) if plain else drawn


def stick_frames(spec: CorpusSpec, name: str, seed: int, style_seed) -> tuple[np.ndarray, object]:
  """(frames float32[n, S, S, 3], record) of class `name`'s clip `seed` drawn in the stick
  style `draw_style(style_seed)` (or its plain member, `spec.plain_fraction` of the time), as
  the corpus draws its samples."""
  rec = synthetic.generate_clip(name, seed, num_frames=spec.clip_frames, **spec.knobs)
  pos = camera.place(np.asarray(rec.positions, np.float32), "auto", "ntu25")
  frames = sticks.render(pos, style(spec, style_seed), num_frames=spec.num_frames,
                         image_size=spec.image_size)
  return frames, rec


def question_answer(task: str, record, n: int, rng: np.random.Generator,
                    classes: tuple[str, ...] = PRETRAIN_CLASSES) -> tuple[str, str]:
  """(user message, answer) of one task about one generated clip; `classes` are the
  candidates of `choice` and `yesno` (never an unseen class)."""
  meta = record.metadata
  head = _frames(n) + _INTRO.format(n=n)
  if task == "caption":
    caps = captions_lib.captions(meta["description"])
    return (head + "\nDescribe the motion of the figure.", caps[int(rng.integers(len(caps)))])
  if task in ("choice", "yesno"):
    others = [c for c in classes if c != meta["label"]]
    if task == "yesno":
      positive = bool(rng.random() < 0.5) or not others
      asked = meta["label"] if positive else others[int(rng.integers(len(others)))]
      return (head + f"\nIs the action '{asked}'? Answer YES or NO.",
              "YES" if positive else "NO")
    k = min(len(others), int(rng.integers(3, 8)))
    cands = [meta["label"]] + [others[i] for i in rng.choice(len(others), k, replace=False)]
    cands = [cands[i] for i in rng.permutation(len(cands))]
    return choice_question(n, cands), f"Label: {meta['label']}"
  if task == "reason":
    return (head + "\nDescribe how the body moves, part by part, infer which action causes "
            "this motion, and end with a line 'Label: <action>'.", meta["description"].strip())
  if task == "part":
    return (head + f"\nWhich body part moves? Options: {', '.join(PARTS)}.",
            f"Part: {meta['part']}")
  if task == "side":
    side = "neither" if meta["side"] == "none" else meta["side"]
    return (head + f"\nWhich side of the body does the motion involve? Options: "
            f"{', '.join(SIDES)}.", f"Side: {side}")
  if task == "updown":
    return (head + "\nDoes the part that moves the most go up or down?",
            f"Direction: {moving_direction(np.asarray(record.positions)[:, 0])}")
  raise ValueError(f"pretraining task {task!r} is unknown; known: {TASKS}")


class Corpus:
  """Random access to the samples of a `CorpusSpec` through a conversation encoder."""

  def __init__(self, spec: CorpusSpec, encoder):
    self.spec = spec
    self.encoder = encoder

  def example(self, g: int):
    """(frames float32[n, S, S, 3], user, answer, record) of sample g."""
    s = self.spec
    if g < 0:
      raise IndexError(f"pretraining sample index {g} is negative")
    frames, rec = stick_frames(s, s.classes[g % len(s.classes)], s.seed_base + g,
                               (s.style_seed, g))
    rng = np.random.default_rng([s.task_seed, g])
    if g < s.first_samples:
      task = s.first_tasks[int(rng.integers(len(s.first_tasks)))]
    elif s.task_weights:
      p = np.asarray(s.task_weights, np.float64)
      task = s.tasks[int(rng.choice(len(s.tasks), p=p / p.sum()))]
    else:
      task = s.tasks[int(rng.integers(len(s.tasks)))]
    user, answer = question_answer(task, rec, s.num_frames, rng, s.classes)
    return frames, user, answer, rec

  def sample(self, g: int) -> dict[str, np.ndarray]:
    frames, user, answer, _ = self.example(g)
    enc = self.encoder.encode(user, answer)
    return dict(pixel_values=np.transpose(frames, (0, 3, 1, 2)), input_ids=enc.input_ids,
                input_mask=enc.input_mask, loss_mask=enc.loss_mask)

  def batch(self, step: int, batch_size: int) -> dict[str, np.ndarray]:
    """The samples step * batch_size ... + batch_size - 1, stacked."""
    samples = [self.sample(step * batch_size + r) for r in range(batch_size)]
    return {k: np.stack([x[k] for x in samples]) for k in samples[0]}


def class_counts(spec: CorpusSpec, num_samples: int) -> dict[str, int]:
  """How many of the first `num_samples` samples show each class."""
  out = {c: 0 for c in spec.classes}
  for g in range(num_samples):
    out[spec.classes[g % len(spec.classes)]] += 1
  return out

