"""Rationale validation, teacher specs, the append-only log and the rationale_file join."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from skel_llm.teachers import base, job

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,finish,reason", [
    ("1. arms up\nLabel: squat\n\n", "stop", None),
    ("1. arms up\n  Label: squat  ", "stop", None),
    ("1. arms up\nLabel: jump", "stop", "wrong label 'jump' (true 'squat')"),
    ("Label: squat\n1. and then more", "stop", "no final 'Label:' line"),
    ("1. arms up\nlabel: squat", "stop", "label line 'label: squat' is not exactly"),
    ("1. arms up\nLabel: squat", "length", "truncated at max_tokens"),
    ("", "stop", "empty reply"),
])
def test_validate(text, finish, reason):
  got = base.validate(text, "squat", finish)
  if reason is None:
    assert got is None
  else:
    assert got.startswith(reason), got


@pytest.mark.parametrize("spec,message", [
    ("gpt4", "unknown teacher spec 'gpt4'; expected one of: kinematic, openai:"),
    ("openai:http://x/v1", "expected openai:<base_url>#<model>"),
    ("openai:ftp://x/v1#m", "is not an http\\(s\\) URL"),
    ("openai:http://x/v1#m?colour=red", "unknown option\\(s\\) \\['colour'\\]"),
    ("openai:http://x/v1#m?key_env=SKEL_LLM_TEST_NO_SUCH_KEY", "SKEL_LLM_TEST_NO_SUCH_KEY"),
])
def test_bad_specs(spec, message):
  with pytest.raises(ValueError, match=message):
    base.make_teacher(spec)


def test_spec_options():
  t = base.make_teacher("openai:http://127.0.0.1:1/v1#m?retries=3&max_tokens=64&price_in=2.5"
                        "&price_out=10")
  assert (t.model, t.retries, t.max_tokens, t.prices) == ("m", 3, 64, (2.5, 10.0))


def test_cli_unknown_teacher(tmp_path):
  r = subprocess.run([sys.executable, "-m", "skel_llm.teach", "--config=configs/distill.py:smoke",
                      "--teacher=gpt4", f"--out={tmp_path}/r.jsonl"], cwd=REPO,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 2
  assert "[teach] error: unknown teacher spec 'gpt4'" in r.stderr


def test_retry_after_parsing():
  from skel_llm.teachers.openai_teacher import retry_after_seconds
  assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
  assert retry_after_seconds({}) is None
  assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_append_log_cuts_a_torn_tail_and_names_bad_lines(tmp_path):
  p = str(tmp_path / "a.jsonl")
  log = job.AppendLog(p)
  log.append({"id": "a"})
  log.close()
  with open(p, "a") as f:
    f.write('{"id": "b", "rat')
  log = job.AppendLog(p)
  assert log.repaired == len('{"id": "b", "rat') and [r["id"] for r in log.records] == ["a"]
  log.append({"id": "c"})
  log.close()
  assert [json.loads(x)["id"] for x in open(p)] == ["a", "c"]
  with open(p, "a") as f:
    f.write("not json\n")
  with pytest.raises(ValueError, match=r"a.jsonl:3: not a JSON line"):
    job.AppendLog(p)


def test_rationale_file_joins_on_clip_id_and_reports_missing(tmp_path, capsys):
  from skel_llm.data import sources
  from skel_llm.teachers.kinematic_teacher import KinematicTeacher
  from skel_llm.train import defaults
  from skel_llm import teach
  config = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  out = str(tmp_path / "r.jsonl")
  s = job.run(list(teach.clip_items(config, 10)), KinematicTeacher(), out, progress=False)
  assert s.kept == 10
  config.data.rationale_file = out
  src = sources.make_source(config.data, "train")
  assert len(src) == 10
  assert "10 of 64 training clips have a rationale; 54 have none" in capsys.readouterr().out
  rec = json.loads(open(out).readline())
  clip = src[[k for k in src.keys()].index(rec["id"])]
  assert clip.rationale == rec["rationale"] and clip.rationale.endswith("Label: " + rec["label"])
  # The pipeline trains on it: the reason task's answer is the teacher's text.
  from skel_llm.data import pipeline
  b = pipeline.ConversationBuilder("reason", src.class_names, src.candidate_ids, 4)
  assert b(clip, None)[1] == rec["rationale"]
  dup = str(tmp_path / "dup.jsonl")
  with open(dup, "w") as f:
    f.write(open(out).readline() * 2)
  config.data.rationale_file = dup
  with pytest.raises(ValueError, match="dup.jsonl:2: clip id .* appears twice"):
    sources.make_source(config.data, "train")
  assert os.path.exists(out)
