"""`spanchain serve`: receive OTLP/HTTP traces and write them with spanchain's exporters.

decode.py     OTLP protobuf/JSON (+gzip) → ReadableSpan
translate.py  OpenInference / OpenLLMetry / gen_ai conventions → our vocabulary (pure)
pipeline.py   bounded queue, translation, fan-out to exporters, backpressure verdicts
server.py     the HTTP receiver: limits, bearer token, /health, 4xx/429/503 answers
app.py        the command: exporters by name, signals, graceful drain, progress
bench.py      spans/s ingested end to end into Aim

Needs the `otel` extra (protobuf + opentelemetry-proto); nothing here is imported by
`import spanchain`.
"""
