r"""Build the pretrained tiny InternVL of the embedded world (the committed asset).

    nice -n 10 python -m skel_llm.tools.pretrain_demo \
        --out=skel_llm/models/assets/tiny_internvl_pretrained

trains the stage demo's tiny InternVL (vision tower, projector and LLM) on stick-figure clips
of the pretraining classes (`skel_llm.pretrain.corpus`) and writes a transformers-layout
folder with `provenance.json` (config, seeds, class lists, loss curve, parameter digests,
file sha256s); `--config.total_steps=N` and the other `--config.*` flags change the recipe
(`skel_llm.pretrain.builder.default_config`). README, "A pretrained MLLM for the embedded
world", gives its wall time; the `demo_pretrained` presets of `configs/*.py` start from it.

    python -m skel_llm.tools.pretrain_demo --out=skel_llm/models/assets/tiny_internvl_pretrained \
        --record_replay

re-runs the first steps of the recorded build on this machine and adds their parameter
digests, with this machine's `software()`, to `provenance.json`'s `replays` (a bitwise replay
is CPU-specific: `builder.REPLAY_KEYS`); tests/pretrain/test_builder.py compares with them.
"""

import os

# Before jax is imported: single-threaded Eigen kernels, so the parameters do not depend on
# how many cores split a reduction (skel_llm.pretrain.builder.XLA_FLAG).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                           ).strip()

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from skel_llm.pretrain import builder  # noqa: E402

_OUT = flags.DEFINE_string("out", None, "folder to write the asset to", required=True)
_CONFIG = config_flags.DEFINE_config_dict("config", builder.default_config())
_RECORD_REPLAY = flags.DEFINE_bool(
    "record_replay", False, f"re-run the first {builder.REPLAY_STEPS} steps of the asset in --out and "
    "record their digests for this machine in its provenance.json (no build)")


def record_replay(out: str) -> dict:
  """Adds this machine's replay digests to `out`'s provenance.json; returns the entry."""
  import json

  from skel_llm import fs
  from skel_llm.models import pretrained
  record = pretrained.verify(out)
  machine = builder.software()
  if builder.replay_match(record, machine, exact=True) is not None:
    raise app.UsageError(f"{out}/{pretrained.PROVENANCE} already holds digests for this "
                         f"machine ({machine['processor']}, {machine['cpu_id']}); the test "
                         f"compares with those")
  entry = {"software": machine, "xla_flags": os.environ["XLA_FLAGS"],
           "params_digest": builder.replay(record, builder.REPLAY_STEPS)}
  record.setdefault("replays", []).append(entry)
  # As the build writes it (indent 1, final newline); fs.write_text: .tmp + rename.
  fs.write_text(fs.join(out, pretrained.PROVENANCE), json.dumps(record, indent=1) + "\n")
  return entry


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if _RECORD_REPLAY.value:
    entry = record_replay(_OUT.value)
    print(f"[pretrain] recorded the first {builder.REPLAY_STEPS} steps' digests on "
          f"{entry['software']['processor']} ({entry['software']['cpu_id']}) in {_OUT.value}: {entry['params_digest']}")
    return
  record = builder.build(_CONFIG.value, _OUT.value)
  first, last = min(record["loss"], key=int), max(record["loss"], key=int)
  print(f"[pretrain] wrote {_OUT.value}: {record['num_params']} parameters, loss "
        f"{record['loss'][first]:.3f} (step {first}) -> {record['loss'][last]:.3f} (step {last}), "
        f"{record['wall_s']} s, params digest {record['params_digest'][str(record['steps'])]}")


if __name__ == "__main__":
  app.run(main)
