"""Evaluation: open-vocabulary recognition and answer scoring.

- `recognition.evaluate(run, state)`: renders held-out clips once, decodes greedily with
  `skel_llm.models.generate` (KV cache), reads the `Label:` line and reports the accuracy with
  chance level (1 / number of candidates) beside it.
"""
