"""One-line errors for `--config` mistakes, checked before absl parses the flags.

absl's `config_flags` reports a missing config file, an unknown preset or an unknown
`--config.<key>` as a long traceback (or an `AttributeError` with escaped quotes); a user
needs the flag, what is wrong with it and the closest valid spelling. `check_config_args`
loads the config the way `config_flags` will (`defaults.load_config`) and walks every
`--config.<key>` override through it. Values are left to absl, which already names the flag
and the type it expected.
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


def _parse(argv: Sequence[str]) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
  """(('--config=...', value) or None, [(flag as typed, dotted key), ...]) from the command line."""
  config, overrides = None, []
  args = list(argv)
  for i, a in enumerate(args):
    if a == "--":
      break
    name, eq, value = a.partition("=")
    if name in ("--config", "-config"):
      if not eq:
        value = args[i + 1] if i + 1 < len(args) else ""
      config = (a if eq else f"{a} {value}", value)
    elif name.startswith(("--config.", "-config.", "--noconfig.", "-noconfig.")):
      key = name.lstrip("-")
      key = key[len("noconfig."):] if key.startswith("noconfig.") else key[len("config."):]
      overrides.append((a, key))
  return config, overrides


def check_config_args(argv: Sequence[str]) -> None:
  """Raises ConfigArgError (one line naming the flag) for a bad `--config` or `--config.<key>`."""
  config_arg, overrides = _parse(argv[1:])
  if config_arg is None:
    return  # absl / main say that --config is required
  flag, value = config_arg
  path, arg = split_config_arg(value)
  if not os.path.isfile(path):
    raise ConfigArgError(_missing_file_message(flag, path))
  try:
    config = defaults.load_config(path, arg)
  except ValueError as e:  # e.g. an unknown preset after ':'
    raise ConfigArgError(f"{flag}: {e}") from None
  for typed, key in overrides:
    _check_key(config, typed, key)


def exit_on_bad_config_args(argv: Sequence[str] | None = None) -> None:
  """`check_config_args(sys.argv)`; on a mistake prints its one line and exits with EXIT_CODE."""
  try:
    check_config_args(sys.argv if argv is None else argv)
  except ConfigArgError as e:
    print(f"[skel_llm] error: {e}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CODE)
