"""Fault-injection tools shared by the fault tests (specs/reliability.md §5.2): the ChaosProxy."""
