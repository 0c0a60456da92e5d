"""Evaluation: open-vocabulary recognition and answer scoring.

- `generate.make_generate(graphdef, rng_vars, max_new_tokens, stop_id)`: static-shape greedy
  decoding of the composed model (frames rendered once per batch).
- `recognition.evaluate(run, state)`: held-out accuracy of the generated `Label:` line with
  chance level (1 / number of candidates) beside it.
"""
