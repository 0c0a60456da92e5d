"""skel_llm.tools.aot: the real train step compiled for a TPU slice from this CPU host.

Each assertion checks the tool's accounting against XLA's own (memory_analysis), against
hand-computed byte counts of the sharded state, or an invariant of the compiled programs
(donation aliases the state; FSDP divides the per-chip parameter bytes; remat lowers XLA's
temporaries at equal FLOPs or more).
"""

import math
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("libtpu", reason="libtpu is not installed (requirements-tpu-aot.txt)")

REPO = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGY = "v5e:2x2"  # 4 chips, 16 GiB each


def _config(**model):
  from skel_llm.train import defaults
  c = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  c.model.text_layers = 2
  c.model.vision_layers = 2
  c.model.update(model)
  return c


@pytest.fixture(scope="module")
def devices():
  from skel_llm.tools import aot
  try:
    return aot.topology_devices(TOPOLOGY)
  except ValueError as e:
    pytest.skip(f"libtpu cannot describe {TOPOLOGY} here: {e}")


def _bytes(n, dtype_size, shards=1):
  return n * dtype_size // shards


def test_data_parallel_bytes_match_hand_count_and_state_is_donated(devices):
  from skel_llm.tools import aot
  c = _config()
  r = aot.compile_step(c, devices, (4, 1, 1), "none", topology=TOPOLOGY)
  assert r.chip == "v5e" and r.num_chips == 4 and r.hbm_bytes == 16 * 2**30
  # Pure data parallelism replicates the state: every chip holds all of it. The smoke model
  # is float32 throughout; AdamW keeps two moments (mu, nu) per trained parameter.
  assert r.param_bytes == 4 * (r.trained_params + r.frozen_params)
  assert r.opt_bytes >= 2 * 4 * r.trained_params
  # The batch is split 4 ways: positions float32[8, 48, 2, 25, 3] and four [8]-or-[8, 400]
  # int32/float32 arrays, each row on one chip.
  rows = c.batch_size // 4
  expected_batch = 4 * rows * (c.data.max_frames * c.data.max_persons * 25 * 3 + 2
                               + 3 * c.data.max_len)
  assert r.batch_bytes == expected_batch
  # XLA's argument buffers hold at least what we counted (TPU layouts pad small arrays).
  assert r.argument_bytes >= r.param_bytes + r.opt_bytes + r.batch_bytes
  # Donation: the new state reuses the old state's buffers.
  assert r.alias_bytes >= r.param_bytes + r.opt_bytes
  assert r.flops > 0 and r.bytes_accessed > 0 and r.fits
  assert r.step_seconds >= max(r.flops / r.peak_flops, r.bytes_accessed / r.hbm_bandwidth)


def test_fsdp_divides_state_bytes_and_remat_lowers_temporaries(devices):
  from skel_llm.tools import aot
  c = _config(text_width=128, text_mlp=512, vision_width=64, vision_mlp=256)
  dp = aot.compile_step(c, devices, (4, 1, 1), "none", topology=TOPOLOGY)
  fsdp = aot.compile_step(c, devices, (1, 4, 1), "none", topology=TOPOLOGY)
  full = aot.compile_step(c, devices, (1, 4, 1), "full", topology=TOPOLOGY)
  # Every weight with an 'embed' / 'vision_embed' axis divisible by 4 is split 4 ways.
  assert fsdp.param_bytes < 0.5 * dp.param_bytes
  assert fsdp.opt_bytes < 0.5 * dp.opt_bytes
  # Recomputing each layer in the backward pass keeps fewer activations and costs FLOPs.
  assert full.temp_bytes < fsdp.temp_bytes
  assert full.flops > fsdp.flops
  assert math.isclose(full.param_bytes, fsdp.param_bytes)


def test_meshes_divide_slice_and_batch():
  from skel_llm.tools import aot
  got = aot.meshes(8, 4)
  assert all(math.prod(m) == 8 and 4 % (m[0] * m[1]) == 0 for m in got)
  # Hand-enumerated: data * fsdp in {1, 2, 4}, tensor = 8 / (data * fsdp).
  assert sorted(got) == sorted([(1, 1, 8), (1, 2, 4), (2, 1, 4), (1, 4, 2), (2, 2, 2),
                                (4, 1, 2)])
  with pytest.raises(ValueError, match="data,fsdp,tensor"):
    aot.parse_mesh("4x2", 8)
  assert aot.parse_mesh("-1,2,1", 8) == (4, 2, 1)


def test_cli_prints_table_for_v5e(devices, tmp_path):
  del devices
  out = subprocess.run(
      [sys.executable, "-m", "skel_llm.tools.aot", "--config=configs/distill.py:smoke",
       f"--topology={TOPOLOGY}", "--mesh=2,2,1", "--function=train,score",
       f"--json={tmp_path / 'r.json'}"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "| 2,2,1 | none |" in out.stdout
  assert "4 x v5e, 16.00 GiB HBM each" in out.stdout
  import json
  row, scored = json.loads((tmp_path / "r.json").read_text())
  assert row["mesh"] == [2, 2, 1] and row["fits"] and row["function"] == "train"
  assert scored["function"] == "score" and scored["resident_bytes"] == row["opt_bytes"]
  bad = subprocess.run(
      [sys.executable, "-m", "skel_llm.tools.aot", "--config=configs/distill.py:smoke",
       f"--topology={TOPOLOGY}", "--mesh=3,1,1"], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert bad.returncode == 2 and "needs 3 devices but 4 are in use" in bad.stderr


def test_eval_programs_hold_the_train_state_shards_and_count_the_optimizer_as_resident(devices):
  from skel_llm.tools import aot
  c = _config()
  train = aot.compile_step(c, devices, (2, 2, 1), "none", topology=TOPOLOGY)
  gen = aot.compile_eval(c, devices, (2, 2, 1), "generate", topology=TOPOLOGY)
  score = aot.compile_eval(c, devices, (2, 2, 1), "score", topology=TOPOLOGY,
                           candidate_tokens=5)
  for r in (gen, score):
    # The same sharded params + frozen as training; the optimizer state is not an input but
    # stays on the chips.
    assert r.param_bytes == train.param_bytes and r.resident_bytes == train.opt_bytes
    assert r.argument_bytes >= r.param_bytes + r.batch_bytes
    assert r.alias_bytes == 0 and r.flops > 0 and r.fits
    assert r.total_bytes == (r.argument_bytes + r.output_bytes + r.temp_bytes
                             + r.resident_bytes)
  # Per chip, 2 of the 8 clips (data x fsdp = 4 batch shards): rendered frames float32[n, S, S, 3], the prompt ids and mask
  # int32[L] each; scoring adds the candidate ids and mask int32[C, M] (one candidate class,
  # the smoke config names none) per clip.
  rows, n, side, length = 8 // 4, c.render.num_frames, c.render.image_size, c.data.max_len
  prompt = rows * 4 * (n * side * side * 3 + 2 * length)
  assert gen.batch_bytes == prompt
  assert score.batch_bytes == prompt + rows * 4 * 2 * 1 * 5
  assert gen.function == "generate" and "| generate | 2,2,1 | none |" in _table(gen)


def _table(r):
  import io
  from skel_llm.tools import aot
  out = io.StringIO()
  aot.print_table([r], out)
  return out.getvalue()


def test_program_over_hbm_is_a_row_that_does_not_fit(devices):
  from skel_llm.tools import aot
  c = _config()
  c.batch_size = 8192  # 2,048 clips per chip: activations far beyond 16 GiB
  r = aot.compile_step(c, devices, (4, 1, 1), "none", topology=TOPOLOGY)
  assert r.refused and "RESOURCE_EXHAUSTED" in r.refused
  assert r.temp_bytes > r.hbm_bytes and not r.fits
  assert "**NO** (XLA refused)" in aot.table_row(r)


def test_scanned_layers_use_the_model_count_for_the_bounds(devices):
  from skel_llm.tools import aot
  c = _config(scan_layers=True)
  r = aot.compile_step(c, devices, (4, 1, 1), "full", topology=TOPOLOGY)
  # XLA counts each scanned stack's body once; the model count covers all layers.
  assert 0 < r.flops < r.model_flops and r.flops_source == "model"
  assert r.counted_flops == r.model_flops and r.model_flops_useful < r.model_flops
  assert r.step_seconds >= r.model_flops / r.peak_flops
  row = aot.table_row(r)
  assert row[aot.HEADER.index("FLOPs used")] == "model"
  assert row[aot.HEADER.index("model TFLOP/step")] == f"{r.model_flops / 1e12:.2f}"
