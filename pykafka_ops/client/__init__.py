"""Clients the toolkit uses: a small blocking Kafka wire client over our codec (for calls
confluent-kafka lacks, readiness probes and protocol tests)."""
