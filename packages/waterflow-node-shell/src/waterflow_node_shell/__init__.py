"""Waterflow nodes exec/shell and exec/script."""
