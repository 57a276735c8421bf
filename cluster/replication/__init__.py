"""Replication: partition leadership, ISR and high watermark, acks, and the follower fetcher."""
