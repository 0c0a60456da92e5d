"""Pins skel_llm/eval/recognition.py, robustness.py, yesno.py and skel_llm/evaluate.py end to end.

A shortened `configs/distill.py` run (tests/configs/heldout_mqa.py: MQA over 4 synthetic
classes, a tiny model from scratch, the demo's narrow view/placement ranges; the session's
`heldout_run` fixture) trains in-process with three evaluators: greedy
decoding scored by both rules, likelihood ranking, and robustness. On clips the model never
saw (other generator seeds) it must generalise far above the 25 % chance; its periodic and
final evaluation files, TensorBoard scalars and PNGs must exist; `python -m skel_llm.evaluate`
on the finished run must give the run's last evaluation bitwise, twice. A random smoke model
pins likelihood ranking against a from-scratch computation of the same log-probabilities and
the YES/NO evaluator's questions. The run is also evaluated on its own training clips.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from skel_llm.eval import options, runner
from skel_llm.train import defaults, trainer

# Together with the other users of the session's `heldout_run` (one worker trains it once).
pytestmark = pytest.mark.xdist_group("heldout_run")

REPO = pathlib.Path(__file__).resolve().parents[2]
HELDOUT_CONFIG = REPO / "tests" / "configs" / "heldout_mqa.py"  # the `heldout_run` fixture's
CLASSES = ("squat", "jump", "raise left arm", "bow")


@pytest.fixture(scope="module")
def trained(heldout_run):
  return heldout_run


def test_short_run_recognises_held_out_clips_far_above_chance(trained):
  _, workdir, result = trained
  dec, score = result["evals"]["heldout"], result["evals"]["heldout_score"]
  assert dec["num_clips"] == 32 and dec["chance"] == 0.25
  assert dec["strict"] >= 0.5, dec  # twice chance, on clips never trained on
  assert dec["authors"] >= dec["strict"]  # a strict hit is always a substring hit
  assert dec["unlabelled"] == 0.0, dec
  assert score["top1"] >= 0.5 and score["top4"] == 1.0, score  # 4 candidates: top-4 is all
  # Evaluated at step 150 and at the end, files and PNGs for each.
  for name in ("heldout", "heldout_score"):
    for step in (150, 300):
      rec = json.loads((workdir / "eval" / name / f"step{step}.json").read_text())
      assert rec["step"] == step and rec["scalars"]["num_clips"] == 32
      assert len(rec["records"]) == 32 and sorted(r["index"] for r in rec["records"]) == list(
          range(32))
      assert (workdir / "eval" / name / f"step{step}_confusion.png").stat().st_size > 0
    conf = json.loads((workdir / "eval" / f"{name}.json").read_text())["confusion"]
    assert conf["rows"] == list(CLASSES) and conf["columns"] == list(CLASSES) + ["unparsed"]
    assert np.asarray(conf["counts"]).sum() == 32
    assert np.trace(np.asarray(conf["counts"])[:, :4]) == round(
        32 * result["evals"][name]["strict" if name == "heldout" else "top1"])
  saved = json.loads((workdir / "result.json").read_text())
  assert saved["evals"] == result["evals"] and saved["eval_step"] == 300
  replies = json.loads((workdir / "eval" / "heldout.json").read_text())["records"]
  assert all(r["reply"].startswith("Label: ") for r in replies)
  per_class = json.loads((workdir / "eval" / "heldout.json").read_text())["per_class"]["strict"]
  assert set(per_class) == set(CLASSES)
  _check_run_outputs(workdir)


def _check_run_outputs(workdir):
  assert (workdir / "frames_start.png").stat().st_size > 0
  assert (workdir / "frames_end.png").stat().st_size > 0
  assert (workdir / "export" / "draction.safetensors").stat().st_size > 0
  events = list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert events
  blob = b"".join(p.read_bytes() for p in events)
  for tag in (b"heldout/strict", b"heldout/authors", b"heldout_score/top1",
              b"heldout/per_class_strict/squat", b"robustness/mean_drop"):
    assert tag in blob, tag


def test_robustness_curve_falls_with_corruption(trained):
  _, workdir, result = trained
  r = result["evals"]["robustness"]
  rec = json.loads((workdir / "eval" / "robustness.json").read_text())
  curves = rec["curves"]
  assert [p["level"] for p in curves["dropout"]] == [0.0, 0.9]
  assert [p["level"] for p in curves["noise"]] == [0.0, 10.0]
  assert all(len(p["seeds"]) == 2 for p in curves["dropout"][1:] + curves["noise"][1:])
  assert r["dropout_0.9"] < r["clean"] and r["noise_10"] <= r["clean"], r
  assert (workdir / "eval" / "robustness" / "step300_robustness.png").stat().st_size > 0


def test_evaluate_cli_reproduces_the_runs_last_evaluation_bitwise_twice(trained, tmp_path):
  config, workdir, _ = trained
  want = {n: json.loads((workdir / "eval" / f"{n}.json").read_text())
          for n in ("heldout", "heldout_score")}
  for attempt in range(2):
    out = tmp_path / f"again{attempt}"
    step, results = runner.evaluate_run(config.copy_and_resolve_references(), str(workdir),
                                          out_dir=str(out), devices=jax.devices()[:1])
    assert step == 300
    for name, rec in want.items():
      got = json.loads((out / f"{name}.json").read_text())
      assert got["scalars"] == rec["scalars"] == results[name]
      assert got["records"] == rec["records"]  # every reply and log-probability


@pytest.fixture(scope="module")
def smoke_run():
  """A random-weight smoke model (reason prompt) with its state; no training."""
  c = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  c.evals = ml_collections.ConfigDict(dict(
      mqa=options.evaluator("recognition", method="score", num_clips=4, batch_size=4,
                            prompt="mqa"),
      reason=options.evaluator("recognition", method="score", num_clips=4, batch_size=4,
                               prompt="reason", max_new_tokens=12),
      yn=options.evaluator("yesno", num_clips=4, batch_size=4)))
  c.data.classes = ("squat", "jump", "bow", "raise left arm", "handshake")
  run = trainer.Run(c, devices=jax.devices()[:1])
  return run, run.init_state()


def _from_scratch_logp(run, state, frames, prefix, cand):
  """log p(cand | prefix, frames) summed, by one full forward pass over prefix + cand."""
  model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
  ids = np.asarray(list(prefix) + list(cand), np.int32)[None]
  logits = model.logits_from_frames(frames, jnp.asarray(ids), jnp.ones(ids.shape, jnp.int32))
  logp = jax.nn.log_softmax(np.asarray(logits[0], np.float64), axis=-1)
  n = len(prefix)
  return float(sum(logp[n - 1 + i, t] for i, t in enumerate(cand)))


@pytest.mark.parametrize("name", ["mqa", "reason"])
def test_likelihood_ranking_equals_a_from_scratch_computation(smoke_run, name):
  run, state = smoke_run
  ev = run.evaluators().items[name][1]
  scalars, details = ev.run(state)
  enc = run.encoder
  cands = details["candidates"]
  assert cands == list(run.config.data.classes)  # the prompt's order
  for rec in details["records"][:2]:
    b = ev.data.pipe.sample(rec["index"])
    prompt = list(b["input_ids"][:int(b["input_mask"].sum())])
    if name == "reason":  # the model's own reasoning, cut before its last Label line
      reply = rec["reply"]
      cut = reply.lower().rfind("label:")
      prompt += enc.tok.encode(reply[:cut] if cut >= 0 else reply)[:12]
    frames = run.render_fn()(state, b["positions"][None], b["num_frames"][None])
    for c, logp in zip(cands, rec["logp"]):
      cand = enc.tok.encode(f"Label: {c}") + [enc.im_end_id]
      want = _from_scratch_logp(run, state, frames, prompt, cand)
      assert logp == pytest.approx(want, abs=1e-4), (c, logp, want)
  assert scalars["num_clips"] == 4 and 0 <= scalars["top1_mean"] <= 1


def test_yesno_asks_about_the_truth_and_about_a_confusable_other_class(smoke_run):
  run, state = smoke_run
  ev = run.evaluators().items["yn"][1]
  scalars, details = ev.run(state)
  recs = details["records"]
  assert len(recs) == 8 and scalars["num_clips"] == 4
  for pos, neg in zip(recs[1::2], recs[0::2]):  # sorted by (index, expected): NO, then YES
    assert pos["expected"] == "YES" and pos["asked"] == pos["truth"]
    assert neg["expected"] == "NO" and neg["asked"] != neg["truth"]
    assert neg["asked"] in ev.data.candidates
  again, _ = ev.run(state)
  assert again == scalars


def test_short_run_recognises_its_own_training_clips(trained, tmp_path):
  """The shared run evaluated on its first training clips (`eval_seed_offset` 0: the
  training generator seeds), which must be the very clips the training source yields."""
  from skel_llm.data import sources
  config, workdir, _ = trained
  c = config.copy_and_resolve_references()
  c.evals = ml_collections.ConfigDict({
      "train_clips": options.evaluator("recognition", method="decode", num_clips=32,
                                       max_new_tokens=10, data=dict(eval_seed_offset=0)),
      "train_clips_score": options.evaluator("recognition", method="score", num_clips=32,
                                             data=dict(eval_seed_offset=0))})
  step, results = runner.evaluate_run(c, str(workdir), out_dir=str(tmp_path / "train_clips"),
                                      devices=jax.devices()[:1])
  assert step == 300
  dec, score = results["train_clips"], results["train_clips_score"]
  assert dec["num_clips"] == 32 and dec["strict"] >= 0.5, dec  # the held-out test's bar
  assert score["top1"] >= 0.5, score
  run = trainer.Run(c, devices=jax.devices()[:1])
  runner.restore_state(run, str(workdir))
  ev = run.evaluators().items["train_clips"][1]
  train = sources.make_source(c.data, "train")
  for i in (0, 5, 31):
    np.testing.assert_array_equal(ev.data.source[i].positions, train[i].positions)
    assert ev.data.source[i].label == train[i].label


def test_other_formats_are_evaluated_with_the_ntu25_renderer_transferred(trained, tmp_path):
  """kinect20 / smpl22 / coco17 versions of held-out clips, in one evaluator run of the
  ntu25-trained checkpoint; the frames equal those of the run's exported renderer
  transferred by `render.checkpoint.transfer_to` outside the evaluator."""
  from skel_llm.render import checkpoint, renderer
  from skel_llm.render import frames as frames_lib
  config, workdir, _ = trained
  c = config.copy_and_resolve_references()
  c.evals = ml_collections.ConfigDict({
      f"as_{t}": options.evaluator("recognition", method="score", num_clips=8,
                                   data=dict(topology=t))
      for t in ("kinect20", "smpl22", "coco17")})
  out = tmp_path / "cross"
  step, results = runner.evaluate_run(c, str(workdir), out_dir=str(out),
                                      devices=jax.devices()[:1])
  assert step == 300 and sorted(results) == ["as_coco17", "as_kinect20", "as_smpl22"]
  for name, scalars in results.items():
    assert scalars["num_clips"] == 8 and scalars["chance"] == 0.25, (name, scalars)
    assert 0.0 <= scalars["top1"] <= 1.0
  # The evaluator's frames against an independent path: the exported (released-format)
  # renderer, transferred here, drawing the evaluator's placed clips.
  run = trainer.Run(c, devices=jax.devices()[:1])
  ckpt_state, _ = runner.restore_state(run, str(workdir))
  released = checkpoint.load_released(workdir / "export" / "draction.safetensors")
  evaluators = run.evaluators()
  fns = evaluators.ctx.predict
  for name in ("as_kinect20", "as_smpl22", "as_coco17"):
    ev = evaluators.items[name][1]
    b = ev.data.batch(0)
    dev = fns.to_device({"positions": b["positions"], "num_frames": b["num_frames"]},
                        ev.data.batch_size)
    got = np.asarray(fns.render(ckpt_state, dev["positions"], dev["num_frames"],
                                ev.data.topology))
    w = checkpoint.transfer_to(released, ev.data.topology)
    poses, vels, _ = frames_lib.select_frames_batch(jnp.asarray(b["positions"]),
                                                    jnp.asarray(b["num_frames"]),
                                                    c.render.num_frames, rng=None,
                                                    stride=c.render.velocity_stride)
    want = np.asarray(renderer.render_batch(w, poses, vels, image_size=c.render.image_size,
                                            fov_deg=c.render.fov_deg,
                                            dense=c.render.dense)[0])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-3)  # bf16 export of the trained features
    assert (got.max(-1) > 1 / 255).mean() > 0.01, name  # the person is drawn
