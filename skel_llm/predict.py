r"""Ask a trained run about skeleton clips: `python -m skel_llm.predict`.

  python -m skel_llm.predict --config=configs/distill.py --workdir=/tmp/skel_llm/distill \
      S001C001P001R001A001.skeleton synthetic:squat:3 --score --frames=/tmp/seen.png

renders each clip (any file `skel_llm.skeleton.load` reads, local or gs://, or `synthetic:<class>[:seed]`,
held-out clip `seed` of the run's own generator settings) with the run's renderer and
placement, asks the run's model and prints one answer per clip. A file in another topology than
the run's (Kinect v1, SMPL-22, COCO-17, a BVH file's own skeleton, ...) is drawn by the run's
renderer transferred to it, as cross-format evaluation does; the answer says so. `--config` is the run's
training config (as for `skel_llm.evaluate` and `skel_llm.serve`).

  --task=label    the run's evaluation prompt (mqa, or reason: reasoning then `Label:`) over
                  the run's evaluation candidates, `--candidates="a;b;c"` or
                  `--candidates=protocol:ntu60_55_5`; `--score` adds every candidate ranked by
                  likelihood (the `recognition` evaluator's score method)
  --task=yesno    `--ask="squat"`: "is the action 'squat'?" answered YES / NO
  --task=caption  the model's description of the motion (the captioning evaluator's prompt)
  --task=qa       `--question="Which arm moves?" --options="the left arm;the right arm"`: the
                  QA evaluator's multiple-choice prompt, prints the option picked; `--score`
                  ranks the options by likelihood; without `--options` the question is asked
                  open and the reply printed
  --json          one JSON object per clip on stdout
  --frames=F.png  the frames the model saw, one row per clip
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's training config.",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", "", "The run folder (its latest checkpoint).")
_TASK = flags.DEFINE_enum("task", "label", ["label", "yesno", "caption", "qa"], "What to ask.")
_CANDIDATES = flags.DEFINE_string("candidates", "", "'a;b;c' or protocol:<name> (default: the "
                                  "run's evaluation classes).")
_PROMPT = flags.DEFINE_enum("prompt", None, ["mqa", "reason"], "Label prompt (default: the "
                            "run's config.data.eval_task).")
_SCORE = flags.DEFINE_bool("score", False, "Also rank every candidate by likelihood.")
_ASK = flags.DEFINE_string("ask", "", "--task=yesno: the label the question names.")
_QUESTION = flags.DEFINE_string("question", "", "--task=qa: the question.")
_OPTIONS = flags.DEFINE_string("options", "", "--task=qa: 'a;b;c' (2 to 8 options; none: the "
                               "question is asked open).")
_JSON = flags.DEFINE_bool("json", False, "One JSON object per clip instead of text.")
_FRAMES = flags.DEFINE_string("frames", "", "Save the frames the model saw to this PNG.")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 160, "Longest reply in tokens.")


def main(argv):
  inputs = argv[1:]
  if not inputs:
    raise app.UsageError("give one or more skeleton files or synthetic:<class>[:seed]")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required (the run's training config)")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required (the trained run)")
  logging.set_verbosity(logging.WARNING)
  from skel_llm.serving import predictor as predictor_lib
  try:
    predictor_lib.check_request(_TASK.value, candidates=_CANDIDATES.value, asked=_ASK.value,
                                question=_QUESTION.value, options=_OPTIONS.value,
                                score=_SCORE.value, prompt=_PROMPT.value)
    options = predictor_lib.parse_options(_OPTIONS.value) if _OPTIONS.value else None
    cands = predictor_lib.parse_candidates(_CANDIDATES.value) if _CANDIDATES.value else None
    pred = predictor_lib.Predictor.load(_CONFIG.value, _WORKDIR.value, candidates=cands,
                                        prompt=_PROMPT.value, max_new_tokens=_MAX_NEW.value)
    try:
      results = []
      for spec in inputs:
        ans = pred.ask(spec, task=_TASK.value, score=_SCORE.value, asked=_ASK.value or None,
                       question=_QUESTION.value or None, options=options)
        results.append(ans)
        print(predictor_lib.to_text(ans, _JSON.value), flush=True)
    finally:
      pred.close()
    if _FRAMES.value:
      predictor_lib.save_frames(results, _FRAMES.value)
  except (ValueError, FileNotFoundError, OSError, KeyError) as e:
    print(f"[predict] error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


def run():
  from skel_llm.train import cli
  cli.run_app(main)


if __name__ == "__main__":
  run()
