"""The transaction coordinator (KIP-98, transaction version 1): ``__transaction_state`` records,
TransactionMetadata and its state machine, the state manager (cache, load/unload, appends), the
coordinator's APIs and the marker sender."""
