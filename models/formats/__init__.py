"""Readers for foreign model files. None of them executes code from the file."""
