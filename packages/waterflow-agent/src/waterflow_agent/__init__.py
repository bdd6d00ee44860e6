"""Waterflow agent: Temporal activity worker that runs nodes on target servers."""
