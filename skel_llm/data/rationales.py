"""`config.data.rationale_file`: teacher rationales joined on the clip id, missing ones counted.

The file is what `python -m skel_llm.teach` writes (JSONL, one `{"id", "rationale", ...}` per
clip, ids = `Clip.key`), or a JSON object `{sample name: rationale}`. `WithRationales` keeps
the training clips that have one, replaces their rationale, and reports how many have none:
those are left out of training, never silently.
"""

from __future__ import annotations

import json
import logging

from skel_llm import fs
from skel_llm.data import sources

log = logging.getLogger(__name__)


def json_lines(path: str, f):
  """(line number, object) of every non-empty line of a JSONL file open as `f`; a line that is
  not JSON raises naming `path:line`."""
  for n, line in enumerate(f, 1):
    if not line.strip():
      continue
    try:
      yield n, json.loads(line)
    except ValueError as e:
      raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None


def read_rationales(path: str) -> dict[str, str]:
  """id -> rationale of a teach output (JSONL) or a legacy JSON `{id: text}` file."""
  with fs.path(path).open(encoding="utf-8") as f:  # local or gs://
    head = f.read(1)
    f.seek(0)
    if head == "{" and not path.endswith(".jsonl"):
      data = json.load(f)
      if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object {{id: rationale}}")
      return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for n, rec in json_lines(path, f):
      for field in ("id", "rationale"):
        if not isinstance(rec, dict) or not isinstance(rec.get(field), str):
          raise ValueError(f"{path}:{n}: expected a string field {field!r} (the lines of "
                           f"python -m skel_llm.teach)")
      if rec["id"] in out:
        raise ValueError(f"{path}:{n}: clip id {rec['id']!r} appears twice")
      out[rec["id"]] = rec["rationale"]
  return out


class WithRationales(sources.ClipSource):
  """The clips of `source` that have a rationale in `table`, with that rationale."""

  def __init__(self, source: sources.ClipSource, table: dict[str, str], path: str):
    self._src = source
    self.name, self.class_names = source.name, source.class_names
    self.candidate_ids = source.candidate_ids
    self.topologies = getattr(source, "topologies", None)  # a mixed-format split's (MixedSource)
    keys = source.keys()
    self._index, self._text, missing = [], [], []
    for i, key in enumerate(keys):
      # A full clip id first, then the sample name alone (legacy `{name: text}` files).
      text = table.get(key, table.get(key.rsplit("/", 1)[-1]))
      if text is None:
        missing.append(key)
      else:
        self._index.append(i)
        self._text.append(text)
    self.missing = missing
    self.unused = len(table) - len(self._index)
    msg = (f"config.data.rationale_file {path}: {len(self._index)} of {len(keys)} training "
           f"clips have a rationale; {len(missing)} have none and are left out")
    if missing:
      msg += f" (first: {missing[0]})"
    print(f"[skel_llm] {msg}", flush=True)
    if not self._index:
      raise ValueError(f"{msg}: no clip id of {source.name} (e.g. {keys[0]!r}) is in the "
                       f"file; was it written for this config?")

  def keys(self) -> list[str]:
    return [self._src.keys()[i] for i in self._index]

  def __len__(self) -> int:
    return len(self._index)

  def __getitem__(self, index: int):
    import dataclasses
    clip = self._src[self._index[index]]
    return dataclasses.replace(clip, rationale=self._text[index])
