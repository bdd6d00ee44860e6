"""Waterflow node http/request."""
