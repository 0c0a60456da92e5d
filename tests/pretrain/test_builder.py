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
  recorded = builder.replay_digests_for(record, machine)
  if recorded is None:  # a bitwise replay is CPU-specific (builder.REPLAY_KEYS)
    pytest.skip(f"no digests recorded for {machine['processor']} ({machine['cpus']} cpus, jax "
                f"{machine['jax']}); record them with: {pretrained.REBUILD} --record_replay")
  want = {k: v for k, v in recorded.items() if int(k) <= REPLAY_STEPS}
  assert got == want, (f"re-run digests differ from {pretrained.ASSET_DIR}/provenance.json; "
                       f"software then {record['software']}, now {machine}")


def test_the_build_refuses_to_run_without_its_determinism_flag():
  # This process runs with the tests' XLA_FLAGS, which lack it.
  with pytest.raises(RuntimeError, match="xla_cpu_multi_thread_eigen"):
    builder.replay({"schema": builder.SCHEMA, "config": {}}, 1)
  with pytest.raises(ValueError, match="schema"):
    builder.config_from_record({"schema": "other"})
