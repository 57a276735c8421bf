"""The `pko monitor` Textual app (reads data only through pykafka_ops.services)."""
