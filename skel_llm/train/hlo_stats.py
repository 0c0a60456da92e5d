"""What a compiled (SPMD-partitioned) program communicates, read from its HLO text.

`collectives(compiled.as_text())` counts each collective kind (all-gather, all-reduce,
reduce-scatter, all-to-all, collective-permute, in their sync or `-start` async forms) and
sums the bytes of their results per device: an all-gather's gathered array, an
all-reduce's reduced one, a permute's moved one. That is the data one device receives or
contributes per op, not a time; tests bound it and `benchmarks/train_step.py --hlo` prints it.
XLA:CPU emits the synchronous forms; where a backend prints an async `-start` whose result
pairs the operand with the output (GPU all-gather, collective-permute), both are counted.
"""

from __future__ import annotations

import dataclasses
import math
import re

KINDS = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")

_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
# `%name = <result type> <kind>(` or `<kind>-start(`; the result type may be a tuple.
_OP = re.compile(r"=\s+(.+?)\s+(" + "|".join(KINDS) + r")(?:-start)?\(")
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def type_bytes(hlo_type: str) -> int:
  """Bytes of an HLO result type such as `f32[2,320,64]{2,1,0}` or a tuple of them."""
  total = 0
  for dtype, dims in _ARRAY.findall(hlo_type):
    if dtype in _BYTES:
      total += _BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
  return total


@dataclasses.dataclass(frozen=True)
class Collective:
  kind: str
  result_type: str
  bytes: int
  op_name: str  # the jax source of the op (`jit(train_step)/jvp()/dot_general`), or ''


def find_collectives(hlo_text: str) -> list[Collective]:
  """Every collective op of an HLO module's text (async pairs once, at `-start`; `-done` and
  fused computations' names never match)."""
  out = []
  for line in hlo_text.splitlines():
    m = _OP.search(line)
    if m is None:
      continue
    name = _OP_NAME.search(line)
    out.append(Collective(m.group(2), m.group(1), type_bytes(m.group(1)),
                          name.group(1) if name else ""))
  return out


def collectives(hlo_text: str) -> dict[str, tuple[int, int]]:
  """{kind: (count, bytes)} over the kinds that occur."""
  stats: dict[str, tuple[int, int]] = {}
  for c in find_collectives(hlo_text):
    n, b = stats.get(c.kind, (0, 0))
    stats[c.kind] = (n + 1, b + c.bytes)
  return stats


def total_bytes(stats: dict[str, tuple[int, int]]) -> int:
  return sum(b for _, b in stats.values())
