"""Configuration: the YAML cluster file and the Kafka settings it may carry."""
