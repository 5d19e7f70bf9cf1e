"""`minsky serve`: every society served as an OpenAI-compatible chat model.

`app.create_app` builds the FastAPI application over a set of societies and one shared
`Runner`; `server.BackgroundServer` runs it under uvicorn in a thread. The wire format is
in `protocol`, how a conversation reaches a society in `conversation`, how request options
shape a run in `choices`, admission control in `slots`, the only coupling to the runner
in `adapter`, and what a listing says about a society in `cards`. The client deadlines
and connection cap that `minsky view` shares are in `connections`. FastAPI and uvicorn
come with the `serve` extra; only `app`, `server` and `deadlines` import them, so the
`minsky` command works without them.
"""
