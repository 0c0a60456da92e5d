"""Evaluation: evaluators chosen by name from `config.evals`, run during and after training.

- `registry`: checks `config.evals`, builds the evaluators, runs them on a schedule, writes
  `eval/<name>.json`, `eval/<name>/step<N>.json`, PNGs and TensorBoard scalars.
- `options`: every evaluator type's options and defaults (light: config files import it).
- `predict`: `PredictFns` (render, generate, score) built from the train state.
- `data`: an evaluator's own split, batches and the robustness corruptions.
- `recognition`: zero-shot recognition by greedy decoding (the authors' and the strict rule)
  and by likelihood ranking; `yesno`: Disc-FT questions; `robustness`: accuracy vs corruption;
  `captioning`: motion captions scored by `caption_metrics` (pycocoevalcap, sacrebleu,
  bert-score); `qa`: Skeleton-QA accuracy per question type.
- `metrics`: the scoring rules and summaries; `plots`: confusion matrices and curves.

`python -m skel_llm.evaluate` runs the same registry on a finished run.
"""
