"""Log storage in Apache Kafka's shape: PartitionLog → LogSegments → LogSegment + indexes.

Files per segment: ``<20-digit base offset>.log`` (record batches exactly as on the wire),
``.index`` (sparse offset → position) and ``.timeindex`` (sparse timestamp → offset).
"""
