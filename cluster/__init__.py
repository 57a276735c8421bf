"""The broker: network server → one handler per Kafka API → log storage, replication,
controller and coordinators; plus the launcher that runs nodes as OS processes."""
