"""Shared network blocks used by more than one method."""
