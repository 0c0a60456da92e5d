"""Bulk numeric row conversion: bit-identical to Python's float, strict about everything else."""

import numpy as np
import pytest

from skel_llm.skeleton import fastfloat
from skel_llm.skeleton.errors import SkeletonFormatError


def _parse(rows, ncols):
  return fastfloat.parse_rows(rows, ncols, path="f.txt", line_of_row=lambda r: r + 1)


def test_values_are_bit_identical_to_python_float():
  rng = np.random.default_rng(0)
  values = rng.normal(size=4000) * 10.0 ** rng.integers(-9, 9, 4000)
  formats = ("%.7g", "%.6f", "%.17g", "%.3e", "%.9f", "%.12g", "%.0f", "%.20f", "%.4E")
  tokens = [formats[k % len(formats)] % v for k, v in enumerate(values)]
  tokens += ["-0", "+5", ".5", "5.", "-.25", "1E-05", "-7.257856E-05", "00012",
             "123456789012345678", "9007199254740993", "0.1000000000000000055511151231257827"]
  tokens += ["0"] * (-len(tokens) % 10)
  rows = [" ".join(tokens[i:i + 10]) for i in range(0, len(tokens), 10)]
  got = _parse(rows, 10)
  want = np.array([[float(t) for t in r.split()] for r in rows])
  assert np.array_equal(got.view(np.int64), want.view(np.int64))


def test_tabs_and_repeated_blanks_are_separators():
  got = _parse([" 1\t2  3", "4 5 6 "], 3)
  assert got.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("row,words", [
    ("1 nan 3", "field 2: expected a finite number, got 'nan'"),
    ("1 2 -Infinity", "field 3: expected a finite number"),
    ("1 1_000 3", "field 2: expected a number, got '1_000'"),
    ("1 0x10 3", "field 2: expected a number"),
    ("1 2", "expected 3 numbers, got 2"),
    ("1 2 3 4", "expected 3 numbers, got 4"),
    ("1,2,3", "expected 3 numbers, got 1"),
    ("", "expected 3 numbers, got 0"),
])
def test_bad_rows_name_line_and_field(row, words):
  with pytest.raises(SkeletonFormatError) as err:
    _parse(["1 2 3", "4 5 6", row, "7 8 9"], 3)
  assert str(err.value).startswith("f.txt: line 3: ") and words in str(err.value)
