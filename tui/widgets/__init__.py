"""Reusable widgets of `pko monitor`: data comes in by attribute, user intent goes out by message."""
