"""Evaluation: translation metrics, shipped judges and Inception features from a user file."""
