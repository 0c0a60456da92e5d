r"""Write stage 3's teacher rationales: `python -m skel_llm.teach`.

  python -m skel_llm.teach --config=configs/distill.py --teacher=kinematic \
      --out=/tmp/skel_llm/rationales.jsonl
  python -m skel_llm.teach --config=configs/disc_ft.py:paper --renderer=/runs/disc_ft \
      --teacher='openai:https://api.openai.com/v1#gpt-4o?key_env=OPENAI_API_KEY&price_in=2.5&price_out=10' \
      --out=/data/rationales.jsonl --concurrency=8

takes the config's training clips (the seen classes under a zero-shot protocol), renders
each with the stage-2 renderer as training does, asks the teacher, and appends one JSON line
per clip to --out (rejects and the request cache beside it, see `skel_llm.teachers.job`;
--out may be gs://, uploaded whole every few lines).
Stop it at any time and run the same command again: it continues where it stopped. Then
train with `--config.data.rationale_file=<out>`.
`--export_batch=F` writes the requests as OpenAI Batch JSONL instead of sending them;
`--import_batch=F` reads the batch results into --out.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config (its data and render).",
                                          lock_config=True)
_TEACHER = flags.DEFINE_string("teacher", "kinematic", "kinematic | openai:<url>#<model>[?...] | "
                               "local:<folder>")
_OUT = flags.DEFINE_string("out", None, "Output JSONL (rationales).")
_RENDERER = flags.DEFINE_string("renderer", "", "Stage-2 workdir or a draction .safetensors "
                                "(needed by teachers that look at frames).")
_LIMIT = flags.DEFINE_integer("limit", None, "Only the first N clips.")
_CONCURRENCY = flags.DEFINE_integer("concurrency", 4, "Requests in flight.")
_SAVE_FRAMES = flags.DEFINE_bool("save_frames", False, "Keep the frames as PNG next to --out.")
_EXPORT_BATCH = flags.DEFINE_string("export_batch", "", "Write OpenAI Batch requests here.")
_IMPORT_BATCH = flags.DEFINE_string("import_batch", "", "Read OpenAI Batch results from here.")
_SUMMARY = flags.DEFINE_string("summary", "", "Also write the summary as JSON here.")


def clip_items(config, limit: int | None = None):
  """The `job.ClipItem`s of the config's training split (seen classes), in index order."""
  from skel_llm.data import sources
  from skel_llm.teachers import job
  data = config.data.copy_and_resolve_references()
  data.rationale_file = ""  # every training clip, not only those an earlier file explains
  src = sources.make_source(data, "train")
  names = src.class_names
  cands = [names[i] for i in src.candidate_ids]
  n = len(src) if limit is None else min(limit, len(src))
  for i in range(n):
    clip = src[i]
    yield job.ClipItem(id=clip.key, label=names[clip.label], candidates=cands,
                       positions=clip.positions, topology=config.data.topology)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config is required, e.g. --config=configs/distill.py")
  if not _OUT.value:
    raise app.UsageError("--out is required (the rationales JSONL)")
  from skel_llm.teachers import base, batch, job
  try:
    teacher = base.make_teacher(_TEACHER.value)
    render = renderer_sha = None
    if _RENDERER.value or teacher.needs_frames:
      from skel_llm.teachers import frames
      module, renderer_sha = frames.load_renderer(config, _RENDERER.value)
      render = frames.ClipRenderer(config, module)
    if config.render.topology != config.data.topology:
      raise ValueError(f"config.render.topology {config.render.topology!r} does not match "
                       f"config.data.topology {config.data.topology!r}")
    items = list(clip_items(config, _LIMIT.value))
    if _EXPORT_BATCH.value:
      n = batch.export_requests(items, teacher, render, _EXPORT_BATCH.value)
      print(f"[teach] wrote {n} requests to {_EXPORT_BATCH.value}")
      return
    if _IMPORT_BATCH.value:
      teacher = batch.BatchResults(_IMPORT_BATCH.value, teacher)
    summary = job.run(items, teacher, _OUT.value, render=render, renderer_sha256=renderer_sha,
                      concurrency=_CONCURRENCY.value, save_frames=_SAVE_FRAMES.value)
  except (ValueError, FileNotFoundError, KeyError) as e:
    print(f"[teach] error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  print(summary.text(), flush=True)
  if _SUMMARY.value:
    from skel_llm import fs
    fs.write_json(_SUMMARY.value, summary.as_dict())  # local or gs://
  if summary.failed:
    print(f"[teach] {len(summary.failed)} clips failed after retries and were not written; run "
          f"the same command again to retry them", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
