"""A trained run behind an interface: `python -m skel_llm.serve` (an OpenAI-compatible
chat-completions server) and `python -m skel_llm.predict` (ask it about skeleton files).

`engine` owns the model and the batching queue; `server` the HTTP side (stdlib
`ThreadingHTTPServer`: one thread per connection, all feeding the one engine); `predictor`
asks the engine about clips with the run's own evaluation questions and candidate scoring.
"""
