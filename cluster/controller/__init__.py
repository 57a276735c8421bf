"""KRaft-style metadata: the metadata log, the quorum that commits it, the controller that
writes it and the MetadataImage every broker reads."""
