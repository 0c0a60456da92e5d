"""`python tests/train/held_main.py --hold_after_step=N <skel_llm.main flags>`: a training job
held after step N as a job waiting to be killed (resume tests).

It runs `skel_llm.main` with a trainer hook: once step N's checkpoint is committed (every
process has passed it), process 0 writes `<workdir>/stopped.json` and every process sleeps
until it is killed. The library itself has no such knob.
"""

import functools
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app, flags  # noqa: E402

from skel_llm import main as skel_main  # noqa: E402

_HOLD = flags.DEFINE_integer("hold_after_step", None, "Hold after this step's checkpoint.")


def _hold(step: int, saved: bool) -> None:
  if step < _HOLD.value:
    return
  if not saved:
    raise RuntimeError(f"--hold_after_step={_HOLD.value}: step {step} wrote no checkpoint; "
                       f"pick a multiple of config.checkpoint.every_steps")
  import jax
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("held_main")
  if jax.process_index() == 0:
    workdir = flags.FLAGS.workdir
    tmp = os.path.join(workdir, "stopped.json.tmp")
    with open(tmp, "w") as f:
      json.dump({"step": step}, f)
    os.replace(tmp, os.path.join(workdir, "stopped.json"))
  print(f"[held_main] holding after step {step}", flush=True)
  while True:
    time.sleep(1.0)


if __name__ == "__main__":
  app.run(functools.partial(skel_main.main, hooks=[_hold]))
