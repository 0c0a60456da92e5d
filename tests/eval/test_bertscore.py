"""Pins BERTScore in skel_llm/eval/caption_metrics.py with a local model folder (a tiny random
BERT written here, since no weights can be downloaded): equal to `bert_score.score` called
directly, idf on, rescaled by the baseline file as (F - b) / (1 - b)."""

import pytest

torch = pytest.importorskip("torch")
bert_score = pytest.importorskip("bert_score")

from skel_llm.eval import caption_metrics  # noqa: E402

HYPS = ["a person raises the left arm", "the person squats down"]
REFS = [["a person raises the right arm", "a person raises arm"],
        ["the person squats down and stands back up"]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  from transformers import BertConfig, BertModel, BertTokenizer
  d = tmp_path_factory.mktemp("tiny_bert")
  words = sorted({w for s in HYPS + [r for rs in REFS for r in rs] for w in s.split()})
  (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
                               + "\n")
  BertTokenizer(str(d / "vocab.txt"), model_max_length=64).save_pretrained(d)
  torch.manual_seed(0)
  BertModel(BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64,
                       max_position_embeddings=64)).save_pretrained(d)
  (d / "baseline.csv").write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.2,0.2,0.2\n2,0.3,0.3,0.25\n")
  return d


def test_bertscore_is_bert_scores_own_value(model_dir):
  f1, how = caption_metrics.bertscore(HYPS, REFS, model=str(model_dir), num_layers=2)
  _, _, want = bert_score.score(HYPS, REFS, model_type=str(model_dir), num_layers=2, idf=True,
                                lang="en", device="cpu")
  assert f1 == pytest.approx(float(want.mean()), abs=1e-6)
  assert "idf on" in how and "not rescaled" in how and str(model_dir) in how
  scaled, how = caption_metrics.bertscore(HYPS, REFS, model=str(model_dir), num_layers=2,
                                          baseline=str(model_dir / "baseline.csv"))
  assert scaled == pytest.approx(float(((want - 0.25) / 0.75).mean()), abs=1e-6)
  assert "rescaled with" in how and "baseline.csv" in how
