"""Asking a trained run about skeleton clips: the library behind `python -m skel_llm.predict`.

`Predictor.load(config, workdir)` restores the run's latest checkpoint through the serving
engine (`skel_llm.serving.engine.Engine`: the run's renderer, model and greedy KV-cache
generation). `ask(spec)` loads one clip — a file `skel_llm.skeleton.load` reads, placed by
the run's `config.data.placement` (`skel_llm.render.camera.place`), or
`synthetic:<class>[:seed]` drawn like the run's own held-out clips — renders it with the run's
renderer and asks the run's model. A file in another topology than the run's
`config.render.topology` (Kinect v1, SMPL-22, COCO-17, a BVH file's own skeleton, ...) is drawn
by the run's renderer transferred to it, as cross-format evaluation does
(`skel_llm.eval.predict.PredictFns.render`; no training); the answer names the clip's
topology and whether the renderer was transferred. Tasks:

  task `label`: the run's evaluation prompt (`config.data.eval_task`: `mqa` picks one
    candidate, `reason` describes the motion and ends with `Label: <action>`), answered by
    greedy generation; with `score=True` every candidate's label line is also ranked by its
    log-likelihood (after the model's own reasoning for `reason`), as the `recognition`
    evaluator's `method="score"` does;
  task `yesno`: the Disc-FT question "is the action '<asked>'?";
  task `caption`: the captioning evaluator's prompt (`prompts.caption_question`), the greedy
    reply cut at the end-of-turn token and stripped, as `skel_llm.eval.captioning` reads it;
  task `qa`: a question with 2..8 options is asked in the QA evaluator's multiple-choice
    format (`prompts.qa_question`: lettered options, "Reply with one option as 'Answer:
    (<letter>) <option>'") and the reply is read by `answers.parse_choice`, as
    `skel_llm.eval.qa` does; `score=True` ranks every option's answer line
    `Answer: (<letter>) <option>` by log-likelihood (label scoring's method). A question
    without options is asked open (`prompts.open_question`, a format no stage trains) and the
    reply is printed as it is.

Candidates come from the run's evaluation split, a `;`-separated list, or
`protocol:<name>` (that zero-shot split's unseen classes, `skel_llm.data.protocols`).
What the tasks produce depends on what the run was trained on: a run trained on recognition
only (the demo) gives captions and QA replies in the style of its rationales or labels.

Axis letters: T frames, P persons, J joints, n rendered frames, S image side, C candidates.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from skel_llm.eval import recognition
from skel_llm.serving import engine as engine_lib
from skel_llm.text import answers, prompts

TASKS = ("label", "yesno", "caption", "qa")


@dataclasses.dataclass
class Answer:
  """The model's answer about one clip (`to_json` is the `--json` record)."""

  input: str
  title: str
  task: str
  prompt: str
  reply: str
  label: str | None = None  # label task: the candidate the reply names (None: none)
  ranked: list[dict[str, float | str]] | None = None  # --score: best first
  yes: bool | None = None  # yesno task: the parsed YES / NO
  question: str | None = None  # qa task: the question asked
  options: list[str] | None = None  # qa task: its options, in the order asked (None: open)
  choice: str | None = None  # qa task: the option the reply picks (None: none or open)
  topology: str | None = None  # the clip's skeleton (registry name, or bvh:<file> for BVH)
  renderer: str | None = None  # the topology of the run's renderer
  transferred: bool | None = None  # drawn by the run's renderer transferred to `topology`
  frames: np.ndarray | None = dataclasses.field(default=None, repr=False)  # float32[n, S, S, 3]

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out.pop("frames")
    return {k: v for k, v in out.items() if v is not None}

  def line(self) -> str:
    """One human-readable line."""
    title = self.title
    if self.transferred:
      title += f" [{self.topology} skeleton, the run's {self.renderer} renderer transferred]"
    if self.task == "yesno":
      said = {True: "YES", False: "NO", None: "unparsed"}[self.yes]
      return f"{title}: {said}  (reply {self.reply!r})"
    if self.task == "caption":
      return f"{title}: {' '.join(self.reply.split()) or '(empty reply)'}"
    if self.task == "qa":
      if self.options is None:
        return f"{title}: {' '.join(self.reply.split()) or '(empty reply)'}"
      text = f"{title}: {self.choice or 'no option picked'}  (reply {self.reply!r})"
      if self.ranked:
        text += "  | ranked " + ", ".join(f"{r['label']} {r['logp']:.2f}" for r in self.ranked)
      return text
    text = f"{title}: {self.label or 'no candidate named'}"
    if self.ranked:
      text += "  | ranked " + ", ".join(f"{r['label']} {r['logp']:.2f}" for r in self.ranked[:3])
    if self.prompt == "reason":
      text += f"\n    reasoning: {' '.join(self.reply.split())}"
    return text


def parse_candidates(text: str) -> list[str]:
  """`a;b;c` or `protocol:<name>` (its unseen classes) -> candidate names."""
  if text.startswith("protocol:"):
    from skel_llm.data import protocols
    return list(protocols.get(text.split(":", 1)[1]).unseen_names)
  names = [n.strip() for n in text.split(";") if n.strip()]
  if not names:
    raise ValueError(f"--candidates {text!r}: expected 'a;b;c' or protocol:<name>")
  return names


def parse_options(text: str) -> list[str]:
  """`a;b;c` -> the options of a multiple-choice question (2 to 8)."""
  names = [n.strip() for n in text.split(";")]
  if any(not n for n in names) or not 2 <= len(names) <= len(prompts.LETTERS):
    raise ValueError(f"--options {text!r}: a multiple-choice question needs 2 to "
                     f"{len(prompts.LETTERS)} non-empty options separated by ';' "
                     f"(e.g. 'the left arm;the right arm'), got {len([n for n in names if n])}")
  return names


def check_request(task: str, *, candidates: str = "", asked: str = "", question: str = "",
                  options: str = "", score: bool = False, prompt: str | None = None) -> None:
  """The flags of one `python -m skel_llm.predict` call, checked before any model is built:
  a ValueError names the flag that does not fit `task`."""
  if task not in TASKS:
    raise ValueError(f"--task {task!r}: use one of {TASKS}")
  given = {"--candidates": candidates, "--ask": asked, "--question": question,
           "--options": options, "--prompt": prompt}
  allowed = {"label": ("--candidates", "--prompt"), "yesno": ("--ask",), "caption": (),
             "qa": ("--question", "--options")}[task]
  for flag, value in given.items():
    if value and flag not in allowed:
      raise ValueError(f"{flag} does not apply to --task={task} (it takes "
                       f"{', '.join(allowed) or 'no question flags'})")
  if task == "yesno" and not asked:
    raise ValueError("--task=yesno needs --ask=<label> (the label the question names)")
  if task == "qa":
    if not question.strip():
      raise ValueError("--task=qa needs --question=\"...\" (and --options=\"a;b;c\" for "
                       "multiple choice)")
    if options:
      parse_options(options)
  if score and task not in ("label", "qa"):
    raise ValueError(f"--score ranks candidates (--task=label) or options (--task=qa); "
                     f"--task={task} has none")
  if score and task == "qa" and not options:
    raise ValueError("--score with --task=qa ranks the options: give --options=\"a;b;c\"")


def label_question(config, prompt: str, candidates: list[str]) -> str:
  """The user message of the run's label prompt, as its evaluation pipeline writes it
  (`skel_llm.data.pipeline.ConversationBuilder`: with `config.data.reason_with_candidates`
  False the reason prompt names no candidates)."""
  n = int(config.render.num_frames)
  if prompt == "mqa":
    return prompts.mqa_question(n, candidates)
  with_candidates = config.data.get("reason_with_candidates", True)
  return prompts.reason_question(n, candidates if with_candidates else None)


class Predictor:
  """One restored run, asked about clips one at a time (see the module docstring)."""

  def __init__(self, engine: engine_lib.Engine, *, candidates: list[str] | None = None,
               prompt: str | None = None):
    self.engine, self.config = engine, engine.config
    self.encoder = engine.encoder
    self.num_frames = engine.num_frames
    self.prompt = prompt or self.config.data.get("eval_task", "mqa")
    if self.prompt not in ("mqa", "reason"):
      raise ValueError(f"prompt {self.prompt!r}: a label is asked with 'mqa' or 'reason'")
    if candidates is None:
      from skel_llm.data import sources
      source = sources.make_source(self.config.data, "eval")
      candidates = [source.class_names[i] for i in source.candidate_ids]
    self.candidates = list(candidates)
    self._cand = recognition.candidate_tokens(self.encoder, self.candidates)

  @classmethod
  def load(cls, config, workdir: str, *, max_new_tokens: int = 160, devices=None,
           **kwargs) -> Predictor:
    engine = engine_lib.Engine.load(config, workdir, devices, max_batch=1,
                                    max_new_tokens=max_new_tokens)
    return cls(engine, **kwargs)

  def close(self) -> None:
    self.engine.close()

  # -- clips ------------------------------------------------------------------------------

  def positions(self, spec: str) -> tuple[np.ndarray, str]:
    """(float32[T, P, J, 3] camera metres, title) of a file or `synthetic:<class>[:seed]`."""
    pos, title, _ = self.clip(spec)
    return pos, title

  def clip(self, spec: str) -> tuple[np.ndarray, str, object]:
    """(float32[T, P, J, 3] camera metres, title, topology) of a file or
    `synthetic:<class>[:seed]`; the topology is a registry name, or a BVH file's own
    `Topology` (`Engine.file_clip`).

    Clips longer than config.data.max_frames are resampled evenly to that length (the model
    reads a fixed-length clip; the first frames alone would miss the action's end).
    """
    if spec.startswith("synthetic:"):
      (pos, title), topology = self._synthetic(spec), self.engine.topology
    else:
      import os
      (pos, topology), title = self.engine.file_clip(spec), os.path.basename(spec)
    d = self.config.data
    if pos.shape[0] > d.max_frames:
      pos = pos[np.round(np.linspace(0, pos.shape[0] - 1, d.max_frames)).astype(int)]
    return pos, title, topology

  def _synthetic(self, spec: str) -> tuple[np.ndarray, str]:
    """A clip as the run's synthetic evaluation source draws it: seed k is held-out clip k."""
    from skel_llm import synthetic
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1] or (len(parts) == 3 and not parts[2].isdigit()):
      raise ValueError(f"{spec!r}: expected synthetic:<class name or index>[:seed]")
    label = int(parts[1]) if parts[1].isdigit() else parts[1]
    seed = int(parts[2]) if len(parts) == 3 else 0
    d = self.config.data
    offset = d.seed + int(d.get("eval_seed_offset", 10_000_000))
    knobs = {k: tuple(v) if isinstance(v, (tuple, list)) else v
             for k, v in (d.get("synthetic_knobs") or {}).items()}
    rec = synthetic.generate_clip(label, offset + seed, num_frames=d.clip_frames,
                                  topology=self.config.render.topology, **knobs)
    name = rec.metadata.get("label", label)
    return np.asarray(rec.positions, np.float32), f"synthetic {name} (seed {seed})"

  def frames(self, positions: np.ndarray, topology=None) -> np.ndarray:
    """float32[n, S, S, 3] frames the model reads for one clip (of `topology`, default the
    run's: another is drawn by the run's renderer transferred to it)."""
    return self.engine.render_positions(positions, topology)

  # -- asking -----------------------------------------------------------------------------

  def _reply(self, user: str, frames: np.ndarray) -> str:
    job = engine_lib.Job(user=user, frames=frames, max_tokens=self.engine.max_new_tokens,
                         temperature=0.0)
    return self.engine.submit(job).text

  def ask(self, spec: str, *, task: str = "label", score: bool = False,
          asked: str | None = None, question: str | None = None,
          options: list[str] | None = None) -> Answer:
    """The model's answer about one clip (`asked`: the label a yes/no question names;
    `question` and `options`: the qa task's question and its options, None: asked open)."""
    if task not in TASKS:
      raise ValueError(f"task {task!r}: use one of {TASKS}")
    if task == "yesno" and not asked:
      raise ValueError("task yesno needs the label to ask about (--ask)")
    if task == "qa":
      if not question or not question.strip():
        raise ValueError("task qa needs a question (--question)")
      if options is not None and not 2 <= len(options) <= len(prompts.LETTERS):
        raise ValueError(f"task qa: a multiple-choice question needs 2 to "
                         f"{len(prompts.LETTERS)} options, got {len(options)}")
      if score and options is None:
        raise ValueError("task qa: score ranks the options; give options")
    pos, title, topology = self.clip(spec)
    try:
      frames = self.frames(pos, topology)
    except ValueError as e:  # e.g. a skeleton the renderer cannot be transferred to
      raise ValueError(f"{spec}: {e}") from None
    name = topology if isinstance(topology, str) else topology.name
    about = dict(topology=name, renderer=self.engine.topology,
                 transferred=self.engine.is_transferred(topology), frames=frames)
    if task == "yesno":
      reply = self._reply(prompts.yesno_question(self.num_frames, asked), frames)
      return Answer(spec, title, task, "yesno", reply, yes=answers.parse_yes_no(reply), **about)
    if task == "caption":
      reply = self._reply(prompts.caption_question(self.num_frames), frames).strip()
      return Answer(spec, title, task, "caption", reply, **about)
    if task == "qa":
      return self._qa(spec, title, question, options, score, frames, about)
    user = label_question(self.config, self.prompt, self.candidates)
    reply = self._reply(user, frames)
    said = answers.match_label(reply, self.candidates)
    out = Answer(spec, title, task, self.prompt, reply,
                 label=None if said is None else self.candidates[said], **about)
    if score:
      out.ranked = self._rank(user, reply, frames)
    return out

  def _qa(self, spec: str, title: str, question: str, options: list[str] | None, score: bool,
          frames: np.ndarray, about: dict) -> Answer:
    if options is None:
      reply = self._reply(prompts.open_question(self.num_frames, question), frames)
      return Answer(spec, title, "qa", "open", reply, question=question, **about)
    options = list(options)
    user = prompts.qa_question(self.num_frames, question, options)
    reply = self._reply(user, frames)
    said = answers.parse_choice(reply, options)
    out = Answer(spec, title, "qa", "qa", reply, question=question, options=options,
                 choice=None if said is None else options[said], **about)
    if score:
      lines = [prompts.qa_answer(options, k) for k in range(len(options))]
      out.ranked = self._score_lines(user, lines, options, frames)
    return out

  def _score_lines(self, user: str, lines: list[str], names: list[str], frames: np.ndarray
                   ) -> list[dict[str, float | str]]:
    """`names` by summed log p(line<|im_end|> | prompt, frames), best first."""
    enc = self.encoder
    prefix = enc.encode(user, None)
    cand = [enc.tok.encode(line) + [enc.im_end_id] for line in lines]
    width = max(len(c) for c in cand)
    cand_ids = np.full((len(cand), width), enc.pad_id, np.int32)
    cand_mask = np.zeros((len(cand), width), np.int32)
    for i, c in enumerate(cand):
      cand_ids[i, :len(c)], cand_mask[i, :len(c)] = c, 1
    return self._ranked(prefix.input_ids, prefix.input_mask, cand_ids, cand_mask, names, frames)

  def _ranked(self, ids, mask, cand_ids, cand_mask, names, frames):
    run = self.engine.run
    logp = run.predict_fns().score(self.engine.state, frames[None], ids[None], mask[None],
                                   cand_ids[None], cand_mask[None])[0]
    per_token = logp / cand_mask.sum(axis=1)
    order = np.argsort(-logp, kind="stable")
    return [{"label": names[i], "logp": float(logp[i]),
             "logp_per_token": float(per_token[i])} for i in order]

  def _rank(self, user: str, reply: str, frames: np.ndarray) -> list[dict[str, float | str]]:
    """Candidates by summed log p(label line | prompt [+ reasoning], frames), best first."""
    enc = self.encoder
    prefix = enc.encode(user, None)
    ids, mask = prefix.input_ids, prefix.input_mask
    if self.prompt == "reason":
      extra_ids, extra_mask = recognition.reasoning_tokens(enc, reply, self.engine.max_new_tokens)
      ids, mask = np.concatenate([ids, extra_ids]), np.concatenate([mask, extra_mask])
    cand_ids, cand_mask = self._cand
    return self._ranked(ids, mask, cand_ids, cand_mask, self.candidates, frames)


def to_text(answer: Answer, as_json: bool) -> str:
  """The CLI's output for one answer: one JSON object, or `Answer.line()`."""
  if as_json:
    import json
    return json.dumps(answer.to_json())
  return answer.line()


def save_frames(answers_: list[Answer], path: str) -> None:
  """PNG of the frames the model saw: one row per answer (`skel_llm.tools.render.save_strip`)."""
  from skel_llm.tools.render import save_strip
  frames = np.concatenate([a.frames for a in answers_])
  save_strip(frames, path, columns=answers_[0].frames.shape[0])
