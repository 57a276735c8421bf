"""pykafka-ops: a Kafka-compatible cluster launched from YAML, and a toolkit to operate any Kafka."""

__version__ = "0.1.0"
