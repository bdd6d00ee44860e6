"""Waterflow node file/transfer."""
