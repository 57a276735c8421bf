"""The screens of `pko monitor` (modes: overview, groups, topics, brokers; pushed: details, tail, skew, help, modals)."""
