r"""OpenAI-compatible chat completions over a trained run: `python -m skel_llm.serve`.

  python -m skel_llm.serve --config=configs/distill.py --workdir=/tmp/skel_llm/distill --port=8000

then any OpenAI client talks to it (base_url http://127.0.0.1:8000/v1, any API key), e.g. as
the teacher of another run: `python -m skel_llm.teach --teacher='openai:http://127.0.0.1:8000/v1#distill'`.
`--hf=FOLDER` serves transformers / InternVL weights instead of a run (fresh renderer).
Frames come as `image_url` data URIs, or as a skeleton the server renders with the run's
renderer (`{"type": "skeleton", "skeleton": {"joints": [...]}}` or `{"path": file}`);
concurrent requests are generated together in batches of up to --max_batch.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's training config.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "", "Run folder (its latest checkpoint).")
_HF = flags.DEFINE_string("hf", "", "A transformers / InternVL folder instead of a run.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
_PORT = flags.DEFINE_integer("port", 8000, "Port (0: any free port, printed at start).")
_MODEL_NAME = flags.DEFINE_string("model_name", "", "Name in replies (default: run@step).")
_MAX_BATCH = flags.DEFINE_integer("max_batch", 4, "Requests generated together.")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 160, "Longest reply (max_tokens is capped).")
_WAIT = flags.DEFINE_float("batch_wait_s", 0.02, "How long a batch waits for more requests.")
_FAULTS = flags.DEFINE_string("inject_faults", "", "Tests only: e.g. '429:1,500,slow:3,drop'.")
_TEST_CONTROL = flags.DEFINE_bool("test_control", False, "Tests only: open /test/faults and "
                                  "/test/stats.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  if _CONFIG.value is None:
    raise app.UsageError("--config is required (the run's training config)")
  if bool(_WORKDIR.value) == bool(_HF.value):
    raise app.UsageError("give exactly one of --workdir=RUN or --hf=FOLDER")
  from skel_llm.serving import engine as engine_lib, server as server_lib
  try:
    faults = server_lib.parse_faults(_FAULTS.value)
    kwargs = dict(model_name=_MODEL_NAME.value or None, max_batch=_MAX_BATCH.value,
                  max_new_tokens=_MAX_NEW.value, batch_wait_s=_WAIT.value)
    if _WORKDIR.value:
      engine = engine_lib.Engine.load(_CONFIG.value, _WORKDIR.value, **kwargs)
    else:
      engine = engine_lib.Engine.load_hf(_CONFIG.value, _HF.value, **kwargs)
    httpd = server_lib.Server((_HOST.value, _PORT.value), engine, faults,
                              fault_control=_TEST_CONTROL.value)
  except (ValueError, FileNotFoundError, OSError) as e:
    print(f"[serve] error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  host, port = httpd.server_address[:2]
  print(f"[serve] listening on http://{host}:{port}/v1 (model {engine.model_name})", flush=True)
  try:
    httpd.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    httpd.server_close()
    engine.close()


if __name__ == "__main__":
  app.run(main)
