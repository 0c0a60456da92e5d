"""Pins skel_llm/pretrain/builder.py against the committed asset's provenance record: the
builder re-run for its first steps gives bit for bit the parameters the record says."""

import json
import os
import subprocess
import sys

import pytest

from skel_llm.models import pretrained
from skel_llm.pretrain import builder, corpus
from tests.conftest import REPO, TIME_FACTOR

REPLAY_STEPS = builder.REPLAY_STEPS


@pytest.fixture(scope="module")
def record():
  return pretrained.verify()


def test_the_repo_recipe_is_the_one_the_asset_was_built_with(record):
  assert json.loads(builder.default_config().to_json()) == record["config"]
  assert record["corpus"]["classes"] == list(corpus.PRETRAIN_CLASSES)
  assert record["corpus"]["excluded_unseen_classes"] == list(corpus.EXCLUDED)
  assert record["xla_flags"].split().count(builder.XLA_FLAG) == 1
  steps = record["steps"]
  assert set(record["params_digest"]) >= {"0", "1", "2", "3", str(steps)}
  first, last = record["loss"]["1"], record["loss"][str(steps)]
  assert last < 0.5 * first  # it learned: the final answer loss is far below the first


def test_first_steps_rerun_reproduce_the_recorded_parameter_digests_bitwise(record):
  # A subprocess: the build's XLA flag must be set before jax starts (this process already
  # runs jax with the tests' 8 simulated devices).
  env = dict(os.environ, XLA_FLAGS=builder.XLA_FLAG, JAX_PLATFORMS="cpu")
  code = ("import json; from skel_llm.models import pretrained; from skel_llm.pretrain import "
          f"builder; print('DIGESTS', json.dumps(builder.replay(pretrained.read_provenance(), "
          f"{REPLAY_STEPS}))); print('MACHINE', json.dumps(builder.software()))")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120 * TIME_FACTOR)
  assert out.returncode == 0, out.stderr[-3000:]
  line = [ln for ln in out.stdout.splitlines() if ln.startswith("DIGESTS ")][-1]
  got = json.loads(line[len("DIGESTS "):])
  machine = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("MACHINE ")][-1][8:])
  match = builder.replay_match(record, machine)
  if match is None:  # a bitwise replay is CPU-specific (builder.REPLAY_KEYS)
    pytest.skip(f"no digests recorded for {machine['processor']} ({machine['cpu_id']}, "
                f"{machine['cpus']} cpus, jax {machine['jax']}); record them with: "
                f"{pretrained.REBUILD} --record_replay")
  then, recorded = match
  want = {k: v for k, v in recorded.items() if int(k) <= REPLAY_STEPS}
  legacy = "" if "cpu_id" in then else (
      " (that run's CPU family and model were not recorded: on another generation of that CPU "
      f"record this one's digests with {pretrained.REBUILD} --record_replay)")
  assert got == want, (f"re-run digests differ from {pretrained.ASSET_DIR}/provenance.json; "
                       f"software then {then}, now {machine}{legacy}")


def test_the_build_refuses_to_run_without_its_determinism_flag():
  # This process runs with the tests' XLA_FLAGS, which lack it.
  with pytest.raises(RuntimeError, match="xla_cpu_multi_thread_eigen"):
    builder.replay({"schema": builder.SCHEMA, "config": {}}, 1)
  with pytest.raises(ValueError, match="schema"):
    builder.config_from_record({"schema": "other"})


def test_a_replay_matches_the_recorded_cpu_generation_before_a_legacy_record():
  keys = dict(machine="x86_64", processor="AMD EPYC", cpus=2, jax="0.10.2", jaxlib="0.10.2")
  zen4 = dict(keys, cpu_id="AuthenticAMD family 25 model 17", isa="avx2 avx512f")
  zen2 = dict(keys, cpu_id="AuthenticAMD family 23 model 49", isa="avx2")
  legacy = {"software": dict(keys), "params_digest": {"0": "legacy"}}
  record = {"software": dict(keys, processor="Intel(R) Xeon(R) Processor"),
            "params_digest": {"0": "build"},
            "replays": [legacy, {"software": zen4, "params_digest": {"0": "zen4"}}]}
  assert builder.replay_match(record, zen4) == (zen4, {"0": "zen4"})
  # Another generation under the same model name: only the record without a CPU id matches,
  # and never when an exact match is asked for (--record_replay's check).
  assert builder.replay_match(record, zen2) == (legacy["software"], {"0": "legacy"})
  assert builder.replay_match(record, zen2, exact=True) is None
  assert builder.replay_match(record, dict(zen4, jax="0.11.0")) is None
  assert builder.replay_digests_for(record, dict(zen2, processor="Intel(R) Xeon(R) Processor")) \
      == {"0": "build"}
  assert set(builder.REPLAY_KEYS) <= set(builder.software())
