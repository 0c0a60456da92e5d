"""`python -m skel_llm.serve`: an OpenAI-compatible chat-completions server over a trained run.

`engine` owns the model and the batching queue; `server` the HTTP side (stdlib
`ThreadingHTTPServer`: one thread per connection, all feeding the one engine).
"""
