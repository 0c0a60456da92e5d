"""skel_llm/fs.py and `--workdir=gs://...` against a GCS emulator on 127.0.0.1.

The emulator (`gcp-storage-emulator`, requirements-test.txt, started by tests/gcs_emulator.py,
which adds the generation header tensorstore needs) serves the JSON API that gcsfs
(behind etils.epath), google-cloud-storage (behind tensorboardX's gs:// writer) and
tensorstore (behind orbax's array writes) speak: the first two find it through
STORAGE_EMULATOR_HOST, tensorstore through TENSORSTORE_GCS_HTTP_URL.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from skel_llm import fs

REPO = pathlib.Path(__file__).resolve().parents[1]
BUCKET = "skel-llm-test"  # tests/conftest.py GCS_BUCKET, the emulator's bucket


def _gs(*parts):
  return "/".join([f"gs://{BUCKET}", *parts])


def test_files_round_trip_through_the_emulator(gcs, tmp_path):
  root = _gs("helpers")
  fs.write_json(fs.join(root, "a", "r.json"), {"x": 1})
  assert fs.read_json(_gs("helpers", "a", "r.json")) == {"x": 1}
  assert fs.listdir(root) == ["a"] and fs.isdir(fs.join(root, "a"))
  assert not fs.exists(fs.join(root, "a", "r.json.tmp"))  # written in place: uploads are atomic
  # No append on object storage: the lines already there are kept, the new ones added.
  order = fs.join(root, "order.jsonl")
  with fs.Appender(order) as f:
    f.write("1\n")
    f.write("2\n")
  with fs.Appender(order) as f:
    f.write("3\n")
    f.sync()
    assert fs.read_text(order) == "1\n2\n3\n"
  image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
  fs.save_image(fs.join(root, "i.png"), image)
  from PIL import Image
  with fs.local_copy(fs.join(root, "i.png")) as local:
    np.testing.assert_array_equal(np.asarray(Image.open(local)), image)
  with fs.local_dir(fs.join(root, "up")) as local:
    pathlib.Path(local, "sub").mkdir()
    pathlib.Path(local, "sub", "t.txt").write_text("hi")
  assert fs.read_text(fs.join(root, "up", "sub", "t.txt")) == "hi"
  with fs.local_copy(fs.join(root, "up")) as local:
    assert pathlib.Path(local, "sub", "t.txt").read_text() == "hi"
  # Nothing leaked to a local folder named "gs:".
  assert not pathlib.Path("gs:").exists()


def _train(workdir, steps, env, cwd, cache, timeout):
  env = dict(os.environ, **env, XLA_FLAGS="", JAX_COMPILATION_CACHE_DIR=str(cache),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run(
      [sys.executable, "-m", "skel_llm.main", f"--config={REPO}/configs/warmup.py:smoke",
       f"--workdir={workdir}", f"--config.total_steps={steps}",
       "--config.evals.heldout.num_clips=4", "--config.export.renderer=True"],
      cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def gs_warmup(gcs, tmp_path_factory, deadline, jax_cache):
  """(workdir, first, second, cwd): a smoke warm-up of 10 steps in gs://, then the same
  command to 15 steps (the gs:// ROOT's stage 1 for the four-stage test below)."""
  workdir = _gs("runs", "warmup")
  cwd = tmp_path_factory.mktemp("cwd")
  limit = deadline(120, "two smoke runs in a gs:// workdir")
  first = _train(workdir, 10, gcs, cwd, jax_cache, limit.left())
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  second = _train(workdir, 15, gcs, cwd, jax_cache, limit.left())
  return workdir, first, second, cwd


def test_training_in_a_gs_workdir_resumes_from_its_checkpoint(gs_warmup):
  """A smoke run of 10 steps in gs://, then the same run to 15: it resumes at step 10 from the
  gs:// checkpoint, and every file of the run is in the bucket, none on the local disk."""
  workdir, first, second, cwd = gs_warmup
  assert "steps 0 -> 10" in first.stdout
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  assert "steps 10 -> 15" in second.stdout, second.stdout[-2000:]
  assert list(cwd.iterdir()) == []  # nothing written under a local "gs:" folder

  kept = sorted(int(s) for s in fs.listdir(fs.join(workdir, "checkpoints")))
  assert kept[-2:] == [10, 15], kept  # the resumed-from step and the last (keep-N policy)
  # The arrays were written by tensorstore into the bucket (orbax's OCDBT store).
  state = fs.listdir(fs.join(workdir, "checkpoints", "15", "state"))
  assert any(n.startswith("ocdbt") or n == "d" for n in state), state
  result = fs.read_json(fs.join(workdir, "result.json"))
  assert result["eval_step"] == 15 and "heldout" in result["evals"]
  assert fs.read_json(fs.join(workdir, "eval", "heldout.json"))["step"] == 15
  steps = [json.loads(line)["step"]
           for line in fs.read_text(fs.join(workdir, "data_order.jsonl")).splitlines()]
  assert steps == list(range(1, 16))
  for name in ("frames_start.png", "frames_end.png", "eval/curves.png",
               "export/draction.safetensors", "export/draction.json"):
    assert fs.isfile(fs.join(workdir, *name.split("/"))), name
  events = fs.listdir(fs.join(workdir, "tensorboard"))
  assert len(events) == 2 and all(n.startswith("events.out.tfevents") for n in events), events
  # The event files hold the logged scalars (read back with TensorBoard's own reader).
  from tensorboard.backend.event_processing import event_accumulator
  with fs.local_copy(fs.join(workdir, "tensorboard")) as local:
    acc = event_accumulator.EventAccumulator(local)
    acc.Reload()
    logged = sorted(e.step for e in acc.Scalars("loss"))
  assert logged == [5, 10, 15], logged


# One real sample file of every format skeleton.load reads (tests/conftest.py shared_data).
SAMPLES = ("real/ntu_skeleton/S001C001P001R001A001.skeleton", "real/pku_mmd/A10N08-L.txt",
           "real/kinetics_skeleton/__U_scuxNlQ.json", "real/coco17/test_coco.json",
           "real/humanml3d/new_joints/012314.npy", "real/humanml3d/new_joint_vecs/012314.npy",
           "real/h36m/test_h36m_body3d.npz", "real/bvh/131_01.bvh")


def _same_record(got, want, source):
  assert (got.format, got.fps, got.is_2d, got.source) == (want.format, want.fps, want.is_2d,
                                                          source)
  np.testing.assert_array_equal(got.positions, want.positions)
  np.testing.assert_array_equal(got.valid, want.valid)


def test_skeleton_files_load_from_gs(gs_root, shared_data, tmp_path):
  """`skeleton.load` of a gs:// file gives the record of the same local file, naming the
  gs:// path; HumanML3D finds its ../texts captions in the bucket; PKU-MMD's label file and an
  explicit texts_dir may be gs:// too; errors name the gs:// file and line."""
  from skel_llm import skeleton
  for rel in SAMPLES:
    local = shared_data / rel
    remote = fs.join(gs_root, "samples", *rel.split("/"))
    fs.write_bytes(remote, local.read_bytes())
    want, got = skeleton.load(local), skeleton.load(remote)
    _same_record(got, want, remote)
    np.testing.assert_equal(got.metadata, want.metadata, err_msg=rel)
  # HumanML3D captions beside a gs:// clip (../texts/<name>.txt), found as for a local tree.
  texts = "a person swings a racket.#a/DET person/NOUN#0.0#0.0\nsomeone serves.#x/NOUN#0.0#2.5\n"
  tree = tmp_path / "hml"
  (tree / "new_joints").mkdir(parents=True)
  (tree / "texts").mkdir()
  (tree / "new_joints" / "012314.npy").write_bytes(
      (shared_data / SAMPLES[4]).read_bytes())
  (tree / "texts" / "012314.txt").write_text(texts)
  for name in ("new_joints/012314.npy", "texts/012314.txt"):
    fs.write_bytes(fs.join(gs_root, "hml", *name.split("/")), (tree / name).read_bytes())
  want = skeleton.load(tree / "new_joints" / "012314.npy")
  got = skeleton.load(fs.join(gs_root, "hml", "new_joints", "012314.npy"))
  assert want.metadata["captions"] and got.metadata["captions"] == want.metadata["captions"]
  assert got.metadata["texts_dir"] == fs.join(gs_root, "hml", "texts")
  got = skeleton.load(fs.join(gs_root, "hml", "new_joints", "012314.npy"),
                      texts_dir=fs.join(gs_root, "hml", "texts"))
  assert got.metadata["captions"] == want.metadata["captions"]
  # PKU-MMD segments with a gs:// label file.
  labels = "3,10,60,1\n7,80,150,2\n"
  (tmp_path / "A10N08-L.labels.txt").write_text(labels)
  label_gs = fs.join(gs_root, "labels", "A10N08-L.txt")
  fs.write_text(label_gs, labels)
  pku = fs.join(gs_root, "samples", *SAMPLES[1].split("/"))
  want = skeleton.load_all(shared_data / SAMPLES[1], label_path=tmp_path / "A10N08-L.labels.txt")
  got = skeleton.load_all(pku, label_path=label_gs)
  assert len(got) == len(want) == 2
  for g, w in zip(got, want):
    _same_record(g, w, pku)
    assert g.metadata["label"] == w.metadata["label"]
  # Errors name the gs:// file (and line).
  lines = (shared_data / SAMPLES[0]).read_text().splitlines()
  lines[5] = "0.1 not-a-number 0.3"
  bad = fs.join(gs_root, "bad", "S001C001P001R001A001.skeleton")
  fs.write_text(bad, "\n".join(lines) + "\n")
  with pytest.raises(skeleton.SkeletonFormatError, match=rf"^{bad}: line 6: "):
    skeleton.load(bad)
  missing = fs.join(gs_root, "bad", "S009.skeleton")
  with pytest.raises(skeleton.SkeletonFormatError, match=rf"^{missing}: no such file"):
    skeleton.load(missing)
  fs.write_text(fs.join(gs_root, "labels", "bad.txt"), "3,10\n")
  with pytest.raises(skeleton.SkeletonFormatError,
                     match=rf"^{gs_root}/labels/bad.txt: line 1: expected 4 comma-separated"):
    skeleton.load_all(pku, label_path=fs.join(gs_root, "labels", "bad.txt"))


def test_render_tool_reads_an_npz_clip_from_gs(gs_root, tmp_path):
  """`python -m skel_llm.tools.render gs://.../clip.npz`: the arrays and the name as from a
  local copy; an .npz without 'poses'/'vels' names the gs:// file."""
  from skel_llm.tools import render
  rng = np.random.default_rng(0)
  poses, vels = rng.normal(size=(2, 8, 2, 25, 3)).astype(np.float32)
  local = tmp_path / "clip.npz"
  np.savez(local, poses=poses, vels=vels)
  remote = fs.join(gs_root, "npz", "clip.npz")
  fs.write_bytes(remote, local.read_bytes())
  got, want = render.read_clip(remote, 8), render.read_clip(str(local), 8)
  np.testing.assert_array_equal(got[0], want[0])
  np.testing.assert_array_equal(got[1], want[1])
  assert got[2:] == want[2:] == ("ntu25", "clip.npz")
  np.savez(local, poses=poses)
  fs.write_bytes(fs.join(gs_root, "npz", "bad.npz"), local.read_bytes())
  with pytest.raises(ValueError, match=rf"^{gs_root}/npz/bad.npz: expected arrays 'poses'"):
    render.read_clip(fs.join(gs_root, "npz", "bad.npz"), 8)


def test_hf_model_folder_on_gs_is_read_through_the_local_cache(gs_root, tmp_path, monkeypatch,
                                                               hf_helpers):
  """`config.init_from=hf:gs://...` (and `config.text.tokenizer=gs://...`): the folder is
  mirrored into $SKEL_LLM_CACHE/gs/<bucket>/<path> once, the run starts from exactly the
  weights the local folder gives, a second start downloads nothing, and a changed or removed
  remote file is brought up to date in the mirror."""
  import jax

  from skel_llm.train import defaults, trainer
  from skel_llm.train import state as state_lib
  folder = tmp_path / "hf"
  folder.mkdir()
  hf = hf_helpers._save_hf(folder, defaults.load_config(REPO / "configs" / "distill.py",
                                                           "smoke"))
  remote = fs.join(gs_root, "models", "tiny-internvl-hf")
  for f in folder.iterdir():
    fs.write_bytes(fs.join(remote, f.name), f.read_bytes())
  cache = tmp_path / "cache"
  monkeypatch.setenv(fs.CACHE_ENV, str(cache))

  def start(init_from, tokenizer):
    c = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
    c.init_from, c.text.tokenizer = f"hf:{init_from}", tokenizer
    run = trainer.Run(c, devices=jax.devices()[:1])
    state, step = run.restore_or_init(None)
    assert step == 0
    return jax.tree.map(np.asarray, state_lib.merge_variables(state))["mllm"]

  want = start(str(folder), str(folder))
  got = start(remote, remote)
  mirror = cache / "gs" / BUCKET / "models" / "tiny-internvl-hf"
  assert sorted(p.name for p in mirror.iterdir()) == sorted(p.name for p in folder.iterdir())
  jax.tree.map(np.testing.assert_array_equal, got, want)
  embed = hf.get_input_embeddings().weight.detach().numpy()
  leaves = [v for v in jax.tree.leaves(got) if v.shape == embed.shape]
  assert any(np.array_equal(v, embed) for v in leaves)  # transformers' own tensor
  stamps = {p.name: p.stat().st_mtime_ns for p in mirror.iterdir()}
  assert fs.cached_folder(remote) == str(mirror)
  assert {p.name: p.stat().st_mtime_ns for p in mirror.iterdir()} == stamps  # nothing fetched
  fs.write_text(fs.join(remote, "config.json"), fs.read_text(fs.join(remote, "config.json"))
                + "\n")
  fs.write_text(fs.join(remote, "extra.txt"), "x")
  fs.cached_folder(remote)
  assert (mirror / "config.json").read_text() == (folder / "config.json").read_text() + "\n"
  assert (mirror / "extra.txt").read_text() == "x"
  fs.remove_tree(fs.join(remote, "extra.txt"))
  fs.cached_folder(remote)
  assert not (mirror / "extra.txt").exists()
  with pytest.raises(FileNotFoundError, match=rf"{gs_root}/models/none: no such folder"):
    fs.cached_folder(fs.join(gs_root, "models", "none"))


def test_teacher_journal_on_gs_resumes_like_a_local_one(gs_root, tmp_path):
  """`skel_llm.teach --out=gs://...`: the kinematic teacher's rationales land in the bucket
  line for line as in a local journal; a rerun skips every clip already written; the remote
  journal is uploaded every `sync_lines` lines and at the end; a torn tail is cut on open."""
  from skel_llm import teach
  from skel_llm.teachers import job
  from skel_llm.teachers.kinematic_teacher import KinematicTeacher
  from skel_llm.train import defaults
  config = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  items = list(teach.clip_items(config, limit=6))
  local = str(tmp_path / "r.jsonl")
  remote = fs.join(gs_root, "teach", "r.jsonl")
  s_local = job.run(items, KinematicTeacher(), local, progress=False)
  s_remote = job.run(items, KinematicTeacher(), remote, progress=False)
  assert s_remote.kept + sum(s_remote.rejected.values()) == 6 == s_local.kept + sum(
      s_local.rejected.values())
  for name in ("r.jsonl", "r.rejects.jsonl", "r.cache.jsonl"):  # lines in completion order
    path, gs_path = pathlib.Path(local).with_name(name), fs.join(gs_root, "teach", name)
    assert sorted(fs.read_text(gs_path).splitlines()) == sorted(
        path.read_text().splitlines()), name
  assert len(fs.read_text(gs_path).splitlines()) == 6  # every reply cached
  again = job.run(items, KinematicTeacher(), remote, progress=False)
  assert again.already_done == 6 and again.asked == 0
  # Upload policy: every sync_lines lines, and on close.
  path = fs.join(gs_root, "teach", "log.jsonl")
  log = job.AppendLog(path, sync_lines=2, sync_seconds=1e9)
  for i in range(3):
    log.append({"i": i})
  assert fs.read_text(path) == '{"i": 0}\n{"i": 1}\n'
  log.close()
  assert fs.read_text(path).splitlines() == ['{"i": 0}', '{"i": 1}', '{"i": 2}']
  fs.write_text(path, '{"i": 0}\n{"i": 1')  # a torn last line
  log = job.AppendLog(path)
  assert log.records == [{"i": 0}] and log.repaired == len('{"i": 1')
  assert fs.read_text(path) == '{"i": 0}\n'
  log.close()


def test_four_stages_with_a_gs_root(gs_warmup, deadline, jax_cache):
  """launch/four_stages.sh ROOT=gs://...: a stage whose gs:// result.json exists is skipped
  (stage 1 is the gs:// warm-up above; stages 3 and 4 are marked finished here, so that only
  stage 2 trains), stage 2 trains in gs:// from the gs:// warm-up, a missing gs:// *_file
  stops the script before stage 1, and a rerun skips every stage."""
  _, _, _, cwd = gs_warmup
  root = _gs("runs")
  for stage in ("distill", "refine"):
    fs.write_json(fs.join(root, stage, "result.json"), {"marked finished by": "the test"})
  env = dict(os.environ, XLA_FLAGS="", PYTHON=sys.executable,
             JAX_COMPILATION_CACHE_DIR=str(jax_cache),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  script = str(REPO / "launch" / "four_stages.sh")
  limit = deadline(60, "stage 2 of the four stages in gs://")
  missing = subprocess.run(["bash", script, root + "/", "smoke",
                            f"distill:--config.data.rationale_file={root}/none.jsonl"],
                           cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=limit.left())
  assert missing.returncode == 2, missing.stdout + missing.stderr
  assert f"--config.data.rationale_file={root}/none.jsonl: no such file" in missing.stderr
  out = subprocess.run(["bash", script, root + "/", "smoke", "--config.total_steps=2",
                        "--config.evals.heldout.num_clips=0", "--config.checkpoint.every_steps=2"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=limit.left())
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  log = out.stdout
  assert f"stage 1/4 warmup: {root}/warmup/result.json exists; skipped" in log
  assert f"--workdir={root}/disc_ft" in log and f"--config.init_from={root}/warmup" in log
  assert f"[skel_llm] init_from {root}/warmup:" in log, log[-3000:]
  assert "[skel_llm] task yesno" in log
  for i, stage in ((3, "distill"), (4, "refine")):
    assert f"stage {i}/4 {stage}: {root}/{stage}/result.json exists; skipped" in log
  assert fs.listdir(fs.join(root, "disc_ft", "checkpoints")) == ["2"]
  assert fs.isfile(fs.join(root, "disc_ft", "result.json"))
  assert list(cwd.iterdir()) == []  # nothing under a local "gs:" folder
  again = subprocess.run(["bash", script, root, "smoke"], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=limit.left())
  assert again.returncode == 0 and again.stdout.count("exists; skipped") == 4, again.stdout
