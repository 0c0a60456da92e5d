"""`local:<run workdir or HF InternVL folder>?config=<config file[:preset]>`: our own Flax MLLM.

For users with an accelerator and no API: the model is loaded in this process by
`skel_llm.serving.engine.Engine` (the engine behind `skel_llm.serve`), and the job's
concurrent requests are generated together in jitted batches with a KV cache. The prompt
is the one the `openai:` teacher sends (`prompts.messages`), so a local teacher and the same
model served over HTTP give the same replies. Greedy by default (temperature=0).

Options: config (required: the model's training config), max_tokens (default 512),
max_batch (default 8), temperature (default 0).
"""

from __future__ import annotations

import os

from skel_llm.teachers import base, prompts

OPTIONS = ("config", "max_tokens", "max_batch", "temperature")


class LocalTeacher:
  kind = "local"
  needs_frames = True
  prompt_version = prompts.PROMPT_VERSION
  prices = None

  def __init__(self, engine, *, max_tokens: int = prompts.MAX_TOKENS, temperature: float = 0.0):
    self.engine = engine
    self.model = engine.model_name
    self.max_tokens, self.temperature = int(max_tokens), float(temperature)

  @classmethod
  def from_spec(cls, spec: str, **kwargs) -> "LocalTeacher":
    from skel_llm.serving import engine as engine_lib
    from skel_llm.train import defaults
    path, _, query = spec[len("local:"):].partition("?")
    opts = base.parse_options(query, spec, OPTIONS)
    if not opts.get("config"):
      raise ValueError(f"teacher spec {spec!r}: add ?config=<the model's config file[:preset]>")
    if not os.path.exists(path):
      raise FileNotFoundError(f"teacher spec {spec!r}: {path} does not exist")
    file, _, arg = opts["config"].partition(":")
    config = defaults.load_config(file, arg or None)
    max_tokens = int(opts.get("max_tokens", prompts.MAX_TOKENS))
    common = dict(max_batch=int(opts.get("max_batch", 8)), max_new_tokens=max_tokens)
    if os.path.isdir(os.path.join(path, "checkpoints")):
      engine = engine_lib.Engine.load(config, path, **common)
    else:
      engine = engine_lib.Engine.load_hf(config, path, **common)
    return cls(engine, max_tokens=max_tokens, temperature=float(opts.get("temperature", 0.0)),
               **kwargs)

  def ask(self, request: base.Request) -> base.Reply:
    if request.frames is None:
      raise ValueError("the local teacher needs rendered frames (--renderer)")
    body = prompts.body(self.model, request.frames, request.label,
                        temperature=self.temperature, max_tokens=self.max_tokens)
    job = self.engine.submit(self.engine.parse(body))
    return base.Reply(job.text, job.finish_reason, job.prompt_tokens, job.completion_tokens)

  def close(self) -> None:
    self.engine.close()
