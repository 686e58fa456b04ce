"""The durable spool: an append-only, crash-safe log of span records and the lossless span codec."""
