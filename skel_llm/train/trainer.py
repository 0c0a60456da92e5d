"""The training loop: steps, checkpoints, the evaluators' schedule, strips, the final export.

Everything the loop uses is built by `skel_llm.train.run.Run`; the evaluators come from
`config.evals` (`skel_llm.eval.registry`) and run every `every_steps` and at the end; the
edges of a run (non-finite steps, SIGTERM) live in `skel_llm.train.lifecycle`; exports in
`skel_llm.train.export`.

Multi-host (`jax.distributed`): every process runs every computation on the global arrays
(steps, PNG strips, evaluation, export gathers, checkpoints); only process 0 writes
TensorBoard, the strips, the evaluation files, `result.json` and the exports. Each process
reads only its rows of every global batch and logs what it read to its own
`data_order.jsonl` (`data_order.process<i>.jsonl` with several processes): the step, a
digest of its rows and which rows they were.

Hooks: `train_and_evaluate(..., hooks=[fn])` calls `fn(step, saved)` after every step, once
the step's checkpoint (if any) has been handed to the checkpointer; tests use it to hold a
job at a known step (tests/train/held_main.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from skel_llm import fs
from skel_llm.train import checkpoint, export, lifecycle
from skel_llm.train.lifecycle import NonFiniteError, Preempted, check_finite  # noqa: F401
from skel_llm.train.run import Run  # noqa: F401  (the trainer's public names)

Hook = Callable[[int, bool], None]


def _row_runs(rows: list[int]) -> list[list[int]]:
  """[[start, stop), ...] runs of consecutive rows (one run per host in the usual layout)."""
  runs: list[list[int]] = []
  for r in rows:
    if runs and runs[-1][1] == r:
      runs[-1][1] = r + 1
    else:
      runs.append([r, r + 1])
  return runs


def _digest(batch: dict[str, np.ndarray]) -> str:
  h = hashlib.sha1()
  for k in sorted(batch):
    h.update(np.ascontiguousarray(batch[k]).tobytes())
  return h.hexdigest()[:16]


def _write_json(path: str, obj: Any) -> None:
  fs.write_json(path, obj)


def _qa_cell(s: dict[str, float], t: str) -> str:
  """'<accuracy>% (chance <c>%, text-only <b>%)' of QA scalars with prefix t ('' or 'causal_')."""
  blind = f", text-only {100 * s[t + 'text_only']:.1f}%" if t + "text_only" in s else ""
  return f"{100 * s[t + 'accuracy']:.1f}% (chance {100 * s[t + 'chance']:.1f}%{blind})"


def _print_eval(results: dict[str, dict[str, float]]) -> None:
  for name, s in results.items():
    if "strict" in s:
      line = (f"strict {100 * s['strict']:.1f}% / authors' rule {100 * s['authors']:.1f}%"
              f" ({100 * s['unlabelled']:.0f}% without a Label line)")
    elif "top1" in s:
      top = [k for k in s if k.startswith("top") and k[3:].isdigit() and k != "top1"]
      line = f"likelihood top-1 {100 * s['top1']:.1f}%" + (
          f", {top[0]} {100 * s[top[0]]:.1f}%" if top else "")
    elif "balanced" in s:
      line = (f"YES/NO balanced {100 * s['balanced']:.1f}% (positive "
              f"{100 * s['positive']:.1f}%, negative {100 * s['negative']:.1f}%)")
    elif "cider_d" in s:
      line = (f"captions BLEU-1 {100 * s['bleu1']:.1f}, BLEU-4 {100 * s['bleu4']:.1f} "
              f"(sacrebleu {100 * s['bleu4_sacrebleu']:.1f}), METEOR {100 * s['meteor']:.1f}, "
              f"ROUGE-L {100 * s['rouge_l']:.1f}, CIDEr-D {s['cider_d']:.3f}")
    elif "temporal_accuracy" in s or "causal_accuracy" in s or "spatial_accuracy" in s:
      parts = [f"{t} {_qa_cell(s, t + '_')}" for t in ("temporal", "causal", "spatial")
               if t + "_accuracy" in s]
      line = f"QA {_qa_cell(s, '')}: " + ", ".join(parts)
    elif "mean_drop" in s:
      line = f"clean {100 * s['clean']:.1f}%, mean drop {100 * s['mean_drop']:.1f} points"
    else:
      line = ", ".join(f"{k} {v:.4g}" for k, v in s.items())
    clips = f" on {int(s['num_clips'])} clips" if "num_clips" in s else ""
    chance = f" (chance {100 * s['chance']:.1f}%)" if "chance" in s else ""
    print(f"[skel_llm] eval {name}: {line}{clips}{chance}", flush=True)


def train_and_evaluate(config, workdir: str, devices: list[jax.Device] | None = None,
                       hooks: Sequence[Hook] = ()) -> dict[str, Any]:
  """Runs (or resumes) one stage in `workdir`; returns the final metrics and evaluations.

  `devices` restricts the mesh to some local devices (tests); default all of them. Raises
  `Preempted` after saving on SIGTERM, `NonFiniteError` at the first non-finite step.
  """
  from skel_llm.train import progress, summary

  fs.makedirs(workdir)
  run = Run(config, workdir, devices)
  is_main = jax.process_index() == 0
  ckpt = checkpoint.Checkpointer(fs.join(workdir, "checkpoints"),
                                 keep=config.checkpoint.keep,
                                 every_steps=config.checkpoint.every_steps,
                                 async_save=config.checkpoint.async_save)
  state, start = run.restore_or_init(ckpt)
  evaluators = run.evaluators()  # built (and checked) before the step compiles
  rng = jax.random.key(config.seed)
  writer = summary.Writer(workdir if is_main else None)
  eval_dir = fs.join(workdir, "eval")
  lay = run.layout
  print(f"[skel_llm] task {config.data.task} (eval {config.data.eval_task}); "
        f"mesh {dict(run.mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform}"
        f" devices; trainable {lay.num_params('params'):,} / frozen {lay.num_params('frozen'):,} "
        f"numbers; {len(run.train_data)} training clips; steps {start} -> {config.total_steps}; "
        f"evaluators {sorted(evaluators.items) or 'none'}", flush=True)
  if start == 0:
    summary.write_strip(run, state, workdir, "frames_start", writer, 0, write=is_main)
  train_step = run.step_fn()
  last: dict[str, float] = {}
  t0, t_last, n_last = time.time(), time.time(), start
  bar = progress.Progress(start, config.total_steps, enabled=is_main)
  # One line per step and process: which data it read (a resumed run must continue the same
  # order; the processes' rows together make the global batch).
  order_name = ("data_order.jsonl" if jax.process_count() == 1
                else f"data_order.process{jax.process_index()}.jsonl")
  rows = _row_runs(run.batch_rows)
  try:
    with lifecycle.Stopper() as stopper, fs.Appender(fs.join(workdir, order_name)) as order:
      overflow = lifecycle.OverflowTally(start)
      checked = lifecycle.FiniteCheck(overflow)  # both read step k's scalars in one fetch
      for step, batch in run.train_data.iterate(start, config.total_steps - start,
                                                prefetch=config.data.get("prefetch", 2)):
        state, metrics = train_step(state, run.batch_to_device(batch), rng)
        done = step + 1
        bar.tick(done)
        checked.push(done, metrics)
        order.write(json.dumps({"step": done, "digest": _digest(batch), "rows": rows}) + "\n")
        stopping = stopper.stop_at(done)
        if done % config.log_every == 0 or done == config.total_steps or stopping:
          last = lifecycle.host_metrics(metrics)
          check_finite(done, last)
          now = time.time()
          last["steps_per_s"] = (done - n_last) / max(now - t_last, 1e-9)
          t_last, n_last = now, done
          writer.scalars(done, last)
          bar.update(done, last)
        saved = False
        if done % config.checkpoint.every_steps == 0 or done == config.total_steps or stopping:
          checked.flush()  # a non-finite state is never written
          order.sync()  # on gs:// the data order is uploaded with each checkpoint
          saved = ckpt.save(done, state, {"next_step": done, "seed": config.data.seed},
                            force=True)
        if stopping:
          ckpt.close()
          raise Preempted(done)
        # Periodic evaluations; the last step's is the final one, after the loop.
        due = evaluators.due(done, final=False) if done < config.total_steps else []
        if due:
          evaluators.run(state, done, out_dir=eval_dir, writer=writer, names=due)
        for hook in hooks:
          hook(done, saved)
      checked.flush()
  except BaseException:
    ckpt.close()  # waits for the writes in flight: nothing committed is lost
    writer.close()
    raise
  finally:
    bar.close()
  ckpt.wait()
  train_time = time.time() - t0
  dropped = overflow.summary()  # the steps of this run (counted_after_step: where it began)
  previous = fs.join(workdir, "result.json")
  if start >= config.total_steps and fs.exists(previous):
    # Nothing left to train (a rerun of a finished stage): keep the training record.
    earlier = fs.read_json(previous)
    last, train_time = earlier.get("train", last), earlier.get("train_seconds", train_time)
    dropped = earlier.get("render_overflow", dropped)
  result: dict[str, Any] = {"train": last, "train_seconds": train_time,
                            "render_overflow": dropped}
  summary.write_strip(run, state, workdir, "frames_end", writer, config.total_steps,
                      write=is_main)
  final = evaluators.run(state, int(config.total_steps), final=True, out_dir=eval_dir,
                         writer=writer)
  _print_eval(final)
  from skel_llm.eval import registry
  registry.write_history(eval_dir)
  result["evals"] = final
  result["eval_step"] = int(config.total_steps)
  result["protocol"] = config.data.get("protocol", "")
  export.export(run, state, workdir)  # every process: it gathers sharded variables
  if is_main:
    _write_json(fs.join(workdir, "result.json"), result)
  writer.close()
  ckpt.close()
  return result
