"""Waterflow SDK and the waterflow command-line client."""
