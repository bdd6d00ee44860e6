"""Waterflow server: REST API and interpreter workflow worker."""
