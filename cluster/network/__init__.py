"""The network layer: listeners, per-connection framing and in-order responses."""
