"""Waterflow nodes docker/exec, docker/compose-up, docker/compose-down."""
