"""Zero-shot protocol registry against the published split lists (../shared/REFERENCE.md s5)."""

import re

import pytest

from skel_llm import synthetic
from skel_llm.data import protocols as P

# (name, #seen, #unseen) of every published protocol.
COUNTS = [
    ("ntu60_55_5", 55, 5), ("ntu60_48_12", 48, 12), ("ntu60_40_20", 40, 20),
    ("ntu60_30_30", 30, 30), ("ntu120_110_10", 110, 10), ("ntu120_96_24", 96, 24),
    ("ntu120_80_40", 80, 40), ("ntu120_60_60", 60, 60), ("pku_mmd_46_5", 46, 5),
    ("pku_mmd_39_12", 39, 12),
] + [(f"{d}_smie_{i}", n - u, u) for d, n, u in (("ntu60", 60, 5), ("ntu120", 120, 10),
                                                   ("pku_mmd", 51, 5)) for i in (1, 2, 3)]


@pytest.mark.parametrize("name,seen,unseen", COUNTS)
def test_counts_and_disjoint_cover(name, seen, unseen):
  p = P.get(name)
  assert len(p.seen) == seen and len(p.unseen) == unseen
  assert set(p.seen).isdisjoint(p.unseen)
  assert sorted(p.seen + p.unseen) == list(range(p.num_classes))
  assert p.unseen_names == tuple(p.class_names[i] for i in p.unseen)
  assert set(p.seen_names).isdisjoint(p.unseen_names)


def _reference_lists(text):
  """{(dataset, 'a/b') or ('smie', dataset): [lists]} parsed from REFERENCE.md section 5."""
  out = {}
  for m in re.finditer(r"(NTU-60|NTU-120|PKU-MMD) (\d+/\d+): ([\d ]+)", text):
    out[m.group(1), m.group(2)] = [int(x) for x in m.group(3).split()]
  smie = text[text.index("SMIE random splits"):]
  smie = smie[:smie.index("- Class names")]
  for ds, key in (("NTU-60", "NTU-60"), ("NTU-120", "NTU-120"), ("PKU", "PKU")):
    chunk = smie[smie.index(key):]
    out["smie", ds] = [[int(x) for x in g.split()] for g in re.findall(r"\[([\d ]+)\]", chunk)][:3]
  return out


def test_lists_match_the_reference(shared_data):
  ref_file = shared_data.parent / "REFERENCE.md"
  if not ref_file.is_file():
    pytest.skip(f"{ref_file} is absent")
  ref = _reference_lists(ref_file.read_text())
  tag = {"NTU-60": "ntu60", "NTU-120": "ntu120", "PKU-MMD": "pku_mmd"}
  checked = 0
  for key, unseen in ref.items():
    if key[0] == "smie":
      ds = {"NTU-60": "ntu60", "NTU-120": "ntu120", "PKU": "pku_mmd"}[key[1]]
      for i, lst in enumerate(unseen, start=1):
        assert P.get(f"{ds}_smie_{i}").unseen == tuple(sorted(lst))
        checked += 1
    else:
      a, b = key[1].split("/")
      assert P.get(f"{tag[key[0]]}_{a}_{b}").unseen == tuple(unseen)
      checked += 1
  assert checked == 19


def test_known_unseen_names():
  # NTU-60 55/5 holds out reading, writing, put on a hat/cap, jump up, touch other person's pocket
  assert P.get("ntu60_55_5").unseen_names == (
      "reading", "writing", "put on a hat/cap", "jump up", "touch other person's pocket")
  assert P.get("pku_mmd_46_5").unseen_names == (
      "brushing hair", "eat meal/snack", "pat on back of other person", "take off a hat/cap",
      "writing")


def test_registry_lookup_and_groups():
  assert len(P.names()) == 20
  assert [p.name for p in P.group("ntu120_smie")] == [f"ntu120_smie_{i}" for i in (1, 2, 3)]
  with pytest.raises(KeyError, match="unknown zero-shot protocol"):
    P.get("ntu60_50_10")
  with pytest.raises(KeyError, match="unknown protocol group"):
    P.group("nope")
  with pytest.raises(ValueError, match="sorted, distinct"):
    P.Protocol("bad", "ntu60", (5, 3), "xsub", "test")
  with pytest.raises(ValueError, match="sorted, distinct"):
    P.Protocol("bad", "ntu60", (60,), "xsub", "test")


def test_synthetic_protocol_is_the_compositional_split():
  p = P.get("synthetic_compositional")
  seen, unseen = synthetic.compositional_split(0)
  assert p.unseen == unseen and p.seen == seen
  assert p.class_names == synthetic.CLASS_NAMES


def test_ntu_benchmarks_on_sample_names():
  # S001C001P001: subject 1 trains in xsub; camera 1 tests in xview; setup 1 tests in xset.
  kw = dict(setup=1, camera=1, subject=1)
  assert P.is_ntu_train_sample("xsub", ntu120=False, **kw)
  assert not P.is_ntu_train_sample("xview", ntu120=False, **kw)
  assert not P.is_ntu_train_sample("xset", ntu120=True, **kw)
  # Subject 3 (S002C001P003) tests; subject 45 trains only under NTU-120's list.
  assert not P.is_ntu_train_sample("xsub", setup=2, camera=1, subject=3, ntu120=False)
  assert P.is_ntu_train_sample("xsub", setup=20, camera=2, subject=45, ntu120=True)
  assert not P.is_ntu_train_sample("xsub", setup=20, camera=2, subject=45, ntu120=False)
  assert len(P.NTU60_XSUB_TRAIN_SUBJECTS) == 20 and len(P.NTU120_XSUB_TRAIN_SUBJECTS) == 53
  with pytest.raises(ValueError, match="benchmark"):
    P.is_ntu_train_sample("xcam", ntu120=False, **kw)


def test_protocols_can_name_classes_the_authors_way():
  p = P.get("ntu60_55_5").with_names("ntu60_author_names")
  assert p.unseen == P.get("ntu60_55_5").unseen
  assert p.unseen_names == ("reading", "writing", "put on hat/cap", "jump up",
                            "touch someone's pocket")
  with pytest.raises(ValueError, match="names 120 classes"):
    P.get("ntu60_55_5").with_names("ntu120_author_names")
