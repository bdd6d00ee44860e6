"""Waterflow core: DSL, expressions, node interface, plugin hooks and the Temporal interpreter workflow."""
