"""`skel_llm.serve` over a tiny checkpoint, on 127.0.0.1, driven by the real `openai` client:
batching, a full teach run, injected faults (429 + Retry-After, 500, slow reply, dropped
connection) retried, SIGKILL mid-run then resume, an unreachable endpoint, bad input."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = "configs/distill.py:smoke"


@pytest.fixture(scope="module")
def config():
  from skel_llm.train import defaults
  return defaults.load_config(REPO / "configs" / "distill.py", "smoke")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, config):
  """A smoke-config run folder with one committed checkpoint (step 0).

  The fresh weights get N(0, 0.1) noise: freshly initialised, the tiny model answers every
  prompt greedily with the same newlines, which would make reply comparisons vacuous.
  """
  import jax

  from skel_llm.train import checkpoint, trainer
  workdir = tmp_path_factory.mktemp("tiny_run")
  run = trainer.Run(config, str(workdir))
  state = run.init_state()
  leaves, treedef = jax.tree.flatten(state["params"])
  keys = jax.random.split(jax.random.key(1), len(leaves))
  state["params"] = jax.tree.unflatten(treedef, [
      x + 0.1 * jax.random.normal(k, x.shape, x.dtype) if x.dtype == np.float32 else x
      for x, k in zip(leaves, keys)])
  ck = checkpoint.Checkpointer(str(workdir / "checkpoints"), keep=1, async_save=False)
  ck.save(0, state, {"next_step": 0, "seed": config.data.seed}, force=True)
  ck.close()
  _RUNS[str(workdir)] = (run, state)
  return str(workdir)


_RUNS = {}  # workdir -> (Run, state) of the tiny checkpoint, for parity checks


@pytest.fixture(scope="module")
def server(tiny_run):
  proc = subprocess.Popen(
      [sys.executable, "-m", "skel_llm.serve", f"--config={CONFIG}", f"--workdir={tiny_run}",
       "--port=0", "--max_new_tokens=8", "--max_batch=4", "--batch_wait_s=0.1",
       "--test_control", "--model_name=tiny"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  url = None
  t0 = time.time()
  lines = []
  while time.time() - t0 < 600:
    line = proc.stdout.readline()
    if not line:
      break
    lines.append(line)
    if line.startswith("[serve] listening on "):
      url = line.split()[3]
      break
  if url is None:
    proc.kill()
    pytest.fail("server did not start:\n" + "".join(lines[-30:]))
  yield url
  proc.send_signal(signal.SIGINT)
  try:
    proc.wait(10)
  except subprocess.TimeoutExpired:
    proc.kill()


def _control(url, path, body=None):
  import httpx2
  root = url[:-len("/v1")]
  if body is None:
    return httpx2.get(root + path, timeout=10).json()
  return httpx2.post(root + path, json=body, timeout=10).json()


@pytest.fixture(scope="module")
def clips(config, tiny_run):
  """12 training clips of the smoke config and their renderer (the run's own)."""
  from skel_llm import teach
  from skel_llm.teachers import frames
  items = list(teach.clip_items(config, 12))
  module, sha = frames.load_renderer(config, tiny_run)
  return items, frames.ClipRenderer(config, module, batch=4), sha


def _teacher(url, **kw):
  from skel_llm.teachers.openai_teacher import OpenAITeacher
  opts = dict(max_tokens=8, timeout=30.0, retries=4, backoff=0.05, seed=0)
  opts.update(kw)
  return OpenAITeacher(url, "tiny", **opts)


def _lines(path):
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]  # every line must be whole JSON


def _ids(out):
  from skel_llm.teachers import job
  p = job.side_paths(out)
  return [r["id"] for r in _lines(out)] + [r["id"] for r in _lines(p["rejects"])]


def test_chat_completions_batches_without_changing_replies(server, clips):
  import openai

  from skel_llm.teachers import prompts
  items, render, _ = clips
  frames = render(items[:4])
  client = openai.OpenAI(api_key="unused", base_url=server, max_retries=0, timeout=120)

  def ask(fr):
    body = prompts.body("tiny", fr, "squat") | {"temperature": 0, "max_tokens": 8}
    return client.chat.completions.create(**body)
  singles = [ask(fr) for fr in frames]
  before = len(_control(server, "/test/stats")["batches"])
  import concurrent.futures
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    together = list(pool.map(ask, frames))
  batches = _control(server, "/test/stats")["batches"][before:]
  assert max(batches) > 1, batches  # concurrent requests shared a generate call
  assert [r.choices[0].message.content for r in together] == [
      r.choices[0].message.content for r in singles]
  assert len({r.choices[0].message.content for r in singles}) > 1  # replies depend on frames
  r = singles[0]
  assert r.model == "tiny" and r.object == "chat.completion"
  assert r.choices[0].finish_reason in ("stop", "length")
  assert r.usage.completion_tokens <= 8
  # 4 frames of 24^2 with patch 6 and downsample 0.5 give 4 visual tokens each.
  assert r.usage.prompt_tokens > 16
  with pytest.raises(openai.BadRequestError, match="exactly 4 frames"):
    client.chat.completions.create(**prompts.body("tiny", frames[0][:3], "squat"))


def test_full_teach_run_then_rerun_asks_nothing(server, clips, tmp_path):
  from skel_llm.teachers import job
  items, render, sha = clips
  out = str(tmp_path / "r.jsonl")
  s = job.run(items[:6], _teacher(server), out, render=render, renderer_sha256=sha,
              concurrency=3, progress=False)
  assert s.failed == {} and s.kept + sum(s.rejected.values()) == 6
  ids = _ids(out)
  assert sorted(ids) == sorted(it.id for it in items[:6])
  for rec in _lines(out) + _lines(job.side_paths(out)["rejects"]):
    assert set(job.LINE_FIELDS) <= set(rec)
    assert rec["model"] == "tiny" and rec["renderer_sha256"] == sha
    assert len(rec["frames_sha256"]) == 64
  # An untrained model writes no label line within 8 tokens: every reply is a counted reject.
  for rec in _lines(job.side_paths(out)["rejects"]):
    assert rec["reason"]
  served = _control(server, "/test/stats")["served"]
  again = job.run(items[:6], _teacher(server), out, render=render, renderer_sha256=sha,
                  concurrency=3, progress=False)
  assert again.already_done == 6 and again.asked == 0
  assert _control(server, "/test/stats")["served"] == served


def test_injected_faults_are_retried_and_every_clip_done_once(server, clips, tmp_path):
  from skel_llm.teachers import job
  items, render, sha = clips
  _control(server, "/test/faults", {"faults": "429:1,500,slow:4,drop"})
  teacher = _teacher(server, timeout=2.0, retries=6)
  out = str(tmp_path / "r.jsonl")
  s = job.run(items[:3], teacher, out, render=render, renderer_sha256=sha, concurrency=1,
              progress=False)
  assert s.failed == {}
  assert sorted(_ids(out)) == sorted(it.id for it in items[:3])
  assert teacher.retried == {"HTTP 429": 1, "HTTP 500": 1, "timeout": 1, "connection": 1}
  arrivals = _control(server, "/test/stats")["arrivals"]
  assert len(arrivals) == 3 + 4
  assert arrivals[1] - arrivals[0] >= 1.0  # Retry-After: 1 was honoured


def test_unreachable_endpoint_fails_clearly_and_writes_nothing(clips, tmp_path):
  from skel_llm.teachers import job
  items, render, sha = clips
  with socket.socket() as sock:  # a port nobody listens on
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  teacher = _teacher(f"http://127.0.0.1:{port}/v1", retries=2, backoff=0.01, timeout=2.0)
  out = str(tmp_path / "r.jsonl")
  s = job.run(items[:2], teacher, out, render=render, renderer_sha256=sha, progress=False)
  assert len(s.failed) == 2 and s.kept == 0
  assert "gave up after 3 attempts" in next(iter(s.failed.values()))
  assert "APIConnectionError" in s.text()
  assert _ids(out) == []
  assert _lines(job.side_paths(out)["cache"]) == []


def test_sigkill_mid_run_then_resume_gives_each_clip_once(server, tiny_run, tmp_path):
  from skel_llm.teachers import job
  out = str(tmp_path / "r.jsonl")
  spec = f"openai:{server}#tiny?max_tokens=8&retries=2&backoff=0.05&timeout=30"
  cmd = [sys.executable, "-m", "skel_llm.teach", f"--config={CONFIG}", f"--renderer={tiny_run}",
         f"--teacher={spec}", f"--out={out}", "--limit=12", "--concurrency=2"]
  _control(server, "/test/faults", {"faults": ",".join(["slow:0.7"] * 12)})
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  t0 = time.time()
  while len(_ids(out)) < 3 and time.time() - t0 < 300 and proc.poll() is None:
    time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  first = _ids(out)
  assert 3 <= len(first) < 12, first
  # A torn last line (as a crash in the middle of a write would leave) is cut on restart.
  with open(out, "a") as f:
    f.write('{"id": "torn", "rationale": "half a li')
  _control(server, "/test/faults", {"faults": ""})
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr
  ids = _ids(out)  # every line parses as JSON
  assert sorted(ids) == sorted(set(ids)) and len(ids) == 12
  assert f"{len(first)} already done" in done.stdout
  # Nothing was asked twice except what was in flight at the kill (at most --concurrency).
  arrivals = _control(server, "/test/stats")["arrivals"]
  assert len(arrivals) <= 12 - len(first) + 2
  assert len(_lines(job.side_paths(out)["cache"])) <= 12 + 2


def test_batch_export_import_and_rejects_with_reasons(clips, tmp_path):
  from skel_llm.teachers import batch, job
  from skel_llm.teachers.openai_teacher import OpenAITeacher
  items, render, sha = clips
  teacher = OpenAITeacher("http://127.0.0.1:9/v1", "gpt-test", prices=(2.5, 10.0))
  req_path = str(tmp_path / "requests.jsonl")
  assert batch.export_requests(items[:4], teacher, render, req_path) == 4
  reqs = _lines(req_path)
  assert [r["url"] for r in reqs] == [batch.URL] * 4
  first = reqs[0]["body"]["messages"][1]["content"]
  assert first[0] == {"type": "text", "text": "Frame1:"}
  assert first[1]["image_url"]["url"].startswith("data:image/png;base64,")
  truth = [it.label for it in items[:4]]
  other = next(n for n in items[0].candidates if n != truth[1])
  texts = [("Summary: ...\n1. ...\nLabel: " + truth[0], "stop"),
           ("1. ...\nLabel: " + other, "stop"),
           ("The arms move and nothing else is said.", "stop"),
           ("1. the right hand rises and", "length")]
  with open(tmp_path / "results.jsonl", "w") as f:
    for r, (text, finish) in zip(reqs, texts):
      f.write(json.dumps({"custom_id": r["custom_id"], "response": {"status_code": 200, "body": {
          "choices": [{"message": {"content": text}, "finish_reason": finish}],
          "usage": {"prompt_tokens": 100, "completion_tokens": 10}}}}) + "\n")
  out = str(tmp_path / "r.jsonl")
  s = job.run(items[:4], batch.BatchResults(str(tmp_path / "results.jsonl"), teacher), out,
              render=render, renderer_sha256=sha, progress=False)
  assert s.kept == 1 and s.prompt_tokens == 400
  assert s.cost_usd == pytest.approx((400 * 2.5 + 40 * 10.0) / 1e6)
  assert "estimated cost $0.0014" in s.text()
  assert _lines(out)[0]["rationale"].endswith("Label: " + truth[0])
  rejects = {r["id"]: r["reason"] for r in _lines(job.side_paths(out)["rejects"])}
  assert rejects[items[1].id] == f"wrong label {other!r} (true {truth[1]!r})"
  assert rejects[items[2].id].startswith("no final 'Label:' line")
  assert rejects[items[3].id].startswith("truncated at max_tokens")
  assert dict(s.rejected) == {"wrong label": 1, "no final 'Label:' line": 1,
                              "truncated at max_tokens": 1}


def test_refuses_to_mix_prompt_versions(clips, tmp_path):
  from skel_llm.teachers import job
  from skel_llm.teachers.kinematic_teacher import KinematicTeacher
  items, _, _ = clips
  out = str(tmp_path / "r.jsonl")
  with open(out, "w") as f:
    f.write(json.dumps({"id": items[0].id, "label": items[0].label, "rationale": "x",
                        "model": "kinematic", "prompt_version": "kinematic-v0"}) + "\n")
  with pytest.raises(ValueError, match=r"r.jsonl:1 was written .* 'kinematic-v0'.*refusing to "
                                       r"mix.*new --out"):
    job.run(items[:2], KinematicTeacher(), out, progress=False)


def test_renderer_topology_mismatch(config, tiny_run, clips):
  from skel_llm.teachers import frames, job
  items, render, _ = clips
  smpl = job.ClipItem("x/0", "squat", ["squat"], np.ones((10, 1, 22, 3), np.float32), "smpl22")
  with pytest.raises(ValueError, match=r"clip 'x/0' has 22 joints \(smpl22\) but the renderer "
                                       r"was built for 25"):
    render([smpl])
  other = config.copy_and_resolve_references()
  other.render.topology = "smpl22"
  other.data.topology = "smpl22"
  with pytest.raises(ValueError, match="does not fit config.render"):
    frames.load_renderer(other, tiny_run)


def test_local_teacher_batches_and_matches_the_server(server, tiny_run, clips, tmp_path):
  """The same model in-process (local:) and over HTTP (openai:) gives the same greedy replies."""
  from skel_llm.teachers import base, job
  items, render, sha = clips
  local = base.make_teacher(f"local:{tiny_run}?config={CONFIG}&max_tokens=8&max_batch=4")
  out_local, out_http = str(tmp_path / "local.jsonl"), str(tmp_path / "http.jsonl")
  s = job.run(items[:4], local, out_local, render=render, renderer_sha256=sha, concurrency=4,
              progress=False)
  assert s.failed == {} and sorted(_ids(out_local)) == sorted(it.id for it in items[:4])
  assert max(local.engine.batches) > 1
  local.close()
  job.run(items[:4], _teacher(server, temperature=0.0), out_http, render=render,
          renderer_sha256=sha, concurrency=2, progress=False)

  def texts(out):
    recs = _lines(out) + _lines(job.side_paths(out)["rejects"])
    return {r["id"]: (r["rationale"], r["finish_reason"]) for r in recs}
  assert texts(out_local) == texts(out_http)
  # Prompts whose greedy replies differ from clip to clip (the first test's): still equal.
  http = _teacher(server, temperature=0.0)
  local = base.make_teacher(f"local:{tiny_run}?config={CONFIG}&max_tokens=8&max_batch=4")
  reqs = [base.Request(it.id, "squat", [], fr, it.positions, it.topology, "")
          for it, fr in zip(items[:4], render(items[:4]))]
  a, b = [local.ask(r).text for r in reqs], [http.ask(r).text for r in reqs]
  local.close()
  assert a == b and len(set(a)) > 1


def test_teach_frames_are_the_training_frames(tiny_run, clips):
  """ClipRenderer (restored from the checkpoint) == the trainer's own render of the batch."""
  run, state = _RUNS[tiny_run]
  items, render, _ = clips
  ours = np.stack(render(items[:4])).astype(np.int32)
  d = run.config.data
  pos = np.zeros((4, d.max_frames, d.max_persons, 25, 3), np.float32)
  lengths = np.zeros((4,), np.int32)
  for i, it in enumerate(items[:4]):
    t, p = it.positions.shape[:2]
    pos[i, :t, :p] = it.positions
    lengths[i] = t
  theirs = np.asarray(run.render_fn()(state, pos, lengths))
  assert ours.shape == theirs.shape
  np.testing.assert_array_equal(ours, np.round(np.clip(theirs, 0, 1) * 255).astype(np.int32))
  assert ours.max() > 0  # something was drawn
  assert render.dropped == {}  # the default capacity holds every pair of these frames


def test_teach_frames_name_the_clips_whose_pairs_a_small_capacity_drops(config, tiny_run, clips):
  from skel_llm.teachers import frames
  items, _, _ = clips
  small = config.copy_and_resolve_references()
  small.render.capacity = 24  # far below the pairs of a 24 px frame of one person
  module, _ = frames.load_renderer(small, tiny_run)
  render = frames.ClipRenderer(small, module, batch=4)
  render(items[:4])
  assert sorted(render.dropped) == sorted(it.id for it in items[:4])
  assert min(render.dropped.values()) > 0


def test_skeleton_content_part_is_rendered_by_the_server(server, clips, shared_data):
  import openai
  items, _, _ = clips
  client = openai.OpenAI(api_key="unused", base_url=server, max_retries=0, timeout=120)
  text = {"type": "text", "text": "Describe the motion."}
  joints = items[0].positions[:, :1].tolist()
  r = client.chat.completions.create(model="tiny", max_tokens=4, temperature=0, messages=[
      {"role": "user", "content": [{"type": "skeleton", "skeleton": {"joints": joints}}, text]}])
  assert r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens <= 4
  ntu = str(shared_data / "real" / "ntu_skeleton" / "S001C001P001R001A001.skeleton")
  r = client.chat.completions.create(model="tiny", max_tokens=4, temperature=0, messages=[
      {"role": "user", "content": [{"type": "skeleton", "skeleton": {"path": ntu}}, text]}])
  assert r.usage.completion_tokens <= 4
  with pytest.raises(openai.BadRequestError, match=r"skeleton.joints: shape \(3, 1, 2, 3\), "
                                                   r"expected \[T, P, 25, 3\]"):
    client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [
        {"type": "skeleton", "skeleton": {"joints": np.zeros((3, 1, 2, 3)).tolist()}}]}])


def test_saved_frames_are_the_frames_asked_about(clips, tmp_path):
  from PIL import Image

  from skel_llm.teachers import job
  from skel_llm.teachers.kinematic_teacher import KinematicTeacher
  items, render, sha = clips
  out = str(tmp_path / "r.jsonl")
  job.run(items[:2], KinematicTeacher(), out, render=render, renderer_sha256=sha,
          save_frames=True, progress=False)
  recs = {r["id"]: r for r in _lines(out)}
  for it, fr in zip(items[:2], render(items[:2])):
    rec = recs[it.id]
    d = os.path.join(job.side_paths(out)["frames"], it.id.replace("/", "__"))
    pngs = np.stack([np.asarray(Image.open(os.path.join(d, f"frame{i + 1:02d}.png")))
                     for i in range(len(fr))])
    np.testing.assert_array_equal(pngs, fr)
    assert rec["frames_sha256"] == job.array_sha256(fr) and rec["renderer_sha256"] == sha


def test_cli_unreachable_endpoint_exits_1_naming_the_failure(tiny_run, tmp_path):
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  out = str(tmp_path / "r.jsonl")
  spec = f"openai:http://127.0.0.1:{port}/v1#m?retries=1&backoff=0.01&timeout=2"
  r = subprocess.run([sys.executable, "-m", "skel_llm.teach", f"--config={CONFIG}",
                      f"--renderer={tiny_run}", f"--teacher={spec}", f"--out={out}", "--limit=2"],
                     cwd=REPO, capture_output=True, text=True, timeout=600)
  assert r.returncode == 1, r.stdout + r.stderr
  assert "0 kept, 0 rejected (none), 2 failed after retries" in r.stdout
  assert "gave up after 2 attempts; last error: APIConnectionError" in r.stdout
  assert "2 clips failed after retries and were not written" in r.stderr
  assert _ids(out) == []


def test_renderer_and_batch_files_on_gs(config, tiny_run, clips, gs_root, tmp_path,
                                        monkeypatch):
  """`teach --renderer=gs://...` (a run folder with checkpoints/, one with only
  export/draction.safetensors, or a released file with its .json) loads the same renderer as
  the local path; `config.render.init=gs://...` builds it too; `--export_batch` and
  `--import_batch` on gs:// write and read the same lines as local files."""
  import shutil

  from flax import nnx

  from skel_llm import fs
  from skel_llm.render import checkpoint as rckpt
  from skel_llm.teachers import batch, frames
  from skel_llm.teachers.openai_teacher import OpenAITeacher
  from skel_llm.train import build
  monkeypatch.setenv("SKEL_LLM_CACHE", str(tmp_path / "cache"))
  items, render, sha = clips
  root = fs.join(gs_root, "teach_files")
  run = fs.join(root, "run")
  with fs.local_dir(run) as d:
    shutil.copytree(tiny_run, d, dirs_exist_ok=True)
  assert frames.load_renderer(config, run)[1] == sha
  module, _ = frames.load_renderer(config, str(tiny_run))
  released = tmp_path / "draction.safetensors"
  rckpt.export_released(module.weights(), released, param_dtype="float32")
  local_sha = frames.load_renderer(config, str(released))[1]
  remote = fs.join(root, "export_only", "export", "draction.safetensors")
  for src, dst in ((released, remote), (released.with_suffix(".json"), rckpt.metadata_path(remote))):
    fs.write_bytes(dst, src.read_bytes())
  assert frames.load_renderer(config, remote)[1] == local_sha
  assert frames.load_renderer(config, fs.join(root, "export_only"))[1] == local_sha
  cached = fs.cached_file(remote)
  assert pathlib.Path(rckpt.metadata_path(cached)).read_bytes() == (
      released.with_suffix(".json").read_bytes())  # the sibling came along
  c = config.copy_and_resolve_references()
  c.render.init = remote
  built = build.renderer_factory(c)(nnx.Rngs(params=0))
  assert frames.weights_sha256(built) == local_sha
  c.render.init = fs.join(root, "none.safetensors")
  with pytest.raises(FileNotFoundError, match=r"config.render.init gs://.*none.safetensors "
                                              r"does not exist"):
    build.renderer_factory(c)
  # Batch requests and results.
  teacher = OpenAITeacher("http://127.0.0.1:9/v1", "gpt-test")
  local_req, remote_req = str(tmp_path / "requests.jsonl"), fs.join(root, "requests.jsonl")
  assert batch.export_requests(items[:2], teacher, render, remote_req) == 2
  assert batch.export_requests(items[:2], teacher, render, local_req) == 2
  assert fs.read_text(remote_req) == pathlib.Path(local_req).read_text()
  lines = "".join(json.dumps({"custom_id": r["custom_id"], "response": {
      "status_code": 200, "body": {"choices": [{"message": {"content": "Label: x"},
                                                "finish_reason": "stop"}]}}}) + "\n"
                  for r in _lines(local_req))
  (tmp_path / "results.jsonl").write_text(lines)
  fs.write_text(fs.join(root, "results.jsonl"), lines)
  got = batch.read_results(fs.join(root, "results.jsonl"))
  assert got == batch.read_results(str(tmp_path / "results.jsonl")) and len(got) == 2
  with pytest.raises(FileNotFoundError, match=r"gs://.*/nothing.jsonl: no such Batch output"):
    batch.read_results(fs.join(root, "nothing.jsonl"))
