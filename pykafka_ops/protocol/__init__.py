"""Kafka wire protocol with no I/O: API keys, the kio-backed codec and the zero-copy data path."""
