"""What spans may carry: the capture policy, secret redaction, per-exporter routing, serialisation."""
