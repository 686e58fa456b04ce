"""OTLP decoding, shared by `spanchain serve` and `spanchain view`."""
