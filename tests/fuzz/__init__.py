"""The protocol fuzzer (specs/reliability.md T8) and the example messages it starts from."""
