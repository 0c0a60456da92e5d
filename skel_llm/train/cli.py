"""One-line errors for `--config` mistakes, checked before absl parses the flags.

absl's `config_flags` reports a missing config file, an unknown preset or an unknown
`--config.<key>` as a long traceback (or an `AttributeError` with escaped quotes); a user
needs the flag, what is wrong with it and the closest valid spelling. `check_config_args`
loads the config the way `config_flags` will (`defaults.load_config`) and walks every
`--config.<key>` override through it. Values are left to absl, which already names the flag
and the type it expected.

A relative `--config=configs/<name>.py` that is not below the current folder is read from
the repository's `configs/` (an editable install run from another folder), so the README's
commands work from anywhere.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import sys
from collections.abc import Sequence

import ml_collections

from skel_llm.train import defaults

EXIT_CODE = 2  # what `skel_llm.main` returns for every configuration mistake
CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


class ConfigArgError(ValueError):
  pass


def _closest(word: str, choices: Sequence[str]) -> str | None:
  hits = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
  return hits[0] if hits else None


def split_config_arg(value: str) -> tuple[str, str | None]:
  """`configs/distill.py:smoke` -> ('configs/distill.py', 'smoke'), as `config_flags` splits it."""
  if os.path.isfile(value) or ":" not in value:
    return value, None
  path, arg = value.split(":", 1)
  return path, arg


def _missing_file_message(flag: str, path: str) -> str:
  msg = f"{flag}: config file {path} does not exist"
  known = sorted(p.name for p in CONFIGS.glob("*.py")) if CONFIGS.is_dir() else []
  if known:
    guess = _closest(os.path.basename(path), known)
    hint = f"did you mean {CONFIGS / guess}? " if guess else ""
    msg += f"; {hint}the configs are {', '.join(known)} in {CONFIGS}"
  return msg


def _check_key(config: ml_collections.ConfigDict, flag: str, key: str) -> None:
  node, done = config, []
  for part in key.split("."):
    if not isinstance(node, ml_collections.ConfigDict):
      raise ConfigArgError(f"{flag}: config.{'.'.join(done)} is a value, not a group; it has no "
                           f"key {part!r}")
    if part not in node:
      where = "config" + "".join(f".{d}" for d in done)
      keys = sorted(node.keys())
      guess = _closest(part, keys)
      fix = (f"did you mean --{where}.{guess}?" if guess
             else f"{where} has the keys {', '.join(keys)}")
      raise ConfigArgError(f"{flag}: {where} has no key {part!r}; {fix}")
    node = node[part]
    done.append(part)


def _parse(argv: Sequence[str]
           ) -> tuple[tuple[str, str, int] | None, list[tuple[str, str]]]:
  """(('--config=...', value, index of the value's argument) or None,
  [(flag as typed, dotted key), ...]) from the command line."""
  config, overrides = None, []
  args = list(argv)
  for i, a in enumerate(args):
    if a == "--":
      break
    name, eq, value = a.partition("=")
    if name in ("--config", "-config"):
      if not eq:
        value = args[i + 1] if i + 1 < len(args) else ""
      config = (a if eq else f"{a} {value}", value, i if eq else i + 1)
    elif name.startswith(("--config.", "-config.", "--noconfig.", "-noconfig.")):
      key = name.lstrip("-")
      key = key[len("noconfig."):] if key.startswith("noconfig.") else key[len("config."):]
      overrides.append((a, key))
  return config, overrides


def _resolve(path: str) -> str:
  if os.path.isfile(path) or os.path.isabs(path):
    return path
  in_repo = CONFIGS.parent / path
  return str(in_repo) if in_repo.is_file() else path


def check_config_args(argv: Sequence[str]) -> list[str]:
  """`argv` with `--config` resolved (see the module docstring); raises ConfigArgError (one
  line naming the flag) for a bad `--config` or `--config.<key>`."""
  argv = list(argv)
  config_arg, overrides = _parse(argv[1:])
  if config_arg is None:
    return argv  # absl / main say that --config is required
  flag, value, index = config_arg
  path, arg = split_config_arg(value)
  resolved = _resolve(path)
  if not os.path.isfile(resolved):
    raise ConfigArgError(_missing_file_message(flag, path))
  if resolved != path:
    new_value = resolved + ("" if arg is None else f":{arg}")
    old = argv[index + 1]
    argv[index + 1] = old[:len(old) - len(value)] + new_value
  try:
    config = defaults.load_config(resolved, arg)
  except ValueError as e:  # e.g. an unknown preset after ':'
    raise ConfigArgError(f"{flag}: {e}") from None
  for typed, key in overrides:
    _check_key(config, typed, key)
  return argv


def exit_on_bad_config_args(argv: Sequence[str] | None = None) -> list[str]:
  """`check_config_args(argv or sys.argv)`; on a mistake prints its one line and exits with
  EXIT_CODE."""
  try:
    return check_config_args(sys.argv if argv is None else argv)
  except ConfigArgError as e:
    print(f"[skel_llm] error: {e}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CODE)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing for `app.run(flags_parser=...)`, with a wrong value or an unknown
  flag (`--config.batch_size=abc`, `--workdr=...`) as one line and EXIT_CODE, like the rest."""
  from absl import flags
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    print(f"[skel_llm] error: {e}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CODE)


def initialize_distributed() -> None:
  """`jax.distributed.initialize()` for `--distributed` (skel_llm.main, skel_llm.evaluate).

  On TPU pods and under Slurm everything is detected; elsewhere (launch/manual_hosts.sh) the
  coordinator, process count and id come from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
  JAX_PROCESS_ID.
  """
  import jax
  env = os.environ
  jax.distributed.initialize(
      coordinator_address=env.get("JAX_COORDINATOR_ADDRESS"),
      num_processes=int(env["JAX_NUM_PROCESSES"]) if "JAX_NUM_PROCESSES" in env else None,
      process_id=int(env["JAX_PROCESS_ID"]) if "JAX_PROCESS_ID" in env else None)


def run_app(main) -> None:
  """`absl.app.run(main)` for the command-line modules: a `--config` mistake or a bad flag
  value is one line and EXIT_CODE instead of absl's traceback."""
  from absl import app
  app.run(main, argv=exit_on_bad_config_args(sys.argv), flags_parser=parse_flags)
