"""Class-name tables against dataset facts and the real sample files."""

import json

import pytest

from skel_llm import synthetic
from skel_llm.data import classnames as C


def test_ntu_tables_have_the_official_sizes_and_anchors():
  assert len(C.NTU120_CLASSES) == 120 and len(set(C.NTU120_CLASSES)) == 120
  assert C.NTU60_CLASSES == C.NTU120_CLASSES[:60]
  # Spot checks against the dataset README numbering (A-number = index + 1).
  anchors = {1: "drink water", 23: "hand waving", 27: "jump up", 35: "nod head/bow",
             43: "falling", 58: "handshaking", 60: "walking apart from each other",
             61: "put on headphone", 80: "squat down", 97: "arm circles", 102: "side kick",
             112: "high-five", 120: "finger-guessing game (playing rock-paper-scissors)"}
  for a, name in anchors.items():
    assert C.NTU120_CLASSES[a - 1] == name
  # Interactions: every name of A50-A60 / A106-A120 involves another person, no other name does
  # except the two "each other" walking classes, which are in the range too.
  two = set(C.NTU_TWO_PERSON_LABELS)
  assert len(two) == 26
  for i, name in enumerate(C.NTU120_CLASSES):
    mentions_other = "other person" in name or "each other" in name or name in (
        "handshaking", "high-five", "step on foot", "support somebody with hand",
        "cheers and drink", "finger-guessing game (playing rock-paper-scissors)")
    assert mentions_other == (i in two), name


def test_pku_mmd_classes_are_51_alphabetical_and_drawn_from_ntu():
  names = C.PKU_MMD_CLASSES
  assert len(names) == 51 and len(set(names)) == 51
  assert list(names) == sorted(names)
  assert names[0] == "bow" and names[1] == "brushing hair" and names[50] == "writing"
  # PKU-MMD reuses NTU's action vocabulary for most classes.
  assert sum(n in C.NTU60_CLASSES for n in names) >= 40


def test_nw_ucla_ids_map_to_labels():
  assert len(C.NW_UCLA_CLASSES) == len(C.NW_UCLA_ACTION_IDS) == 10
  assert C.nw_ucla_label(1) == 0 and C.nw_ucla_label(11) == 8 and C.nw_ucla_label(12) == 9
  with pytest.raises(ValueError, match="action id 7"):
    C.nw_ucla_label(7)


def test_class_names_lookup():
  assert C.class_names("synthetic") == synthetic.CLASS_NAMES
  assert C.class_names("ntu60") is C.NTU60_CLASSES
  with pytest.raises(KeyError, match="unknown dataset"):
    C.class_names("kinetics400")


def test_real_ntu_samples_carry_the_named_action(shared_data):
  from skel_llm.skeleton import load

  for sample, name, persons in (("S001C003P008R002A058", "handshaking", 2),
                                ("S001C001P001R001A001", "drink water", 1)):
    rec = load(shared_data / "real/ntu_skeleton" / f"{sample}.skeleton")
    assert C.NTU120_CLASSES[rec.metadata["label"]] == name
    assert rec.num_persons == persons
    assert (rec.metadata["label"] in C.NTU_TWO_PERSON_LABELS) == (persons == 2)


def test_author_names_are_the_keys_of_the_released_confusable_lists(shared_data):
  """The released top-5 confusable lists: one entry per NTU class, in label order, by short name."""
  assert len(C.NTU120_AUTHOR_NAMES) == 120 and len(set(C.NTU120_AUTHOR_NAMES)) == 120
  assert C.NTU60_AUTHOR_NAMES == C.NTU120_AUTHOR_NAMES[:60]
  for tag, names in (("ntu60", C.NTU60_AUTHOR_NAMES), ("ntu120", C.NTU120_AUTHOR_NAMES)):
    similar = json.loads((shared_data / f"draction_reference/{tag}_similar_actions.json")
                         .read_text())
    assert tuple(similar) == names
    for name, confusable in similar.items():
      assert len(confusable) == 5 and name not in confusable and set(confusable) <= set(names)
  # Same classes as the official names: spot checks across both halves and the interactions.
  for i, short in ((0, "drink water"), (34, "bow (bend forward)"), (57, "shaking hands"),
                   (79, "squat down"), (111, "high-five"), (119, "rock-paper-scissors")):
    assert C.NTU120_AUTHOR_NAMES[i] == short
  assert C.class_names("ntu60_author_names") == C.NTU60_AUTHOR_NAMES
