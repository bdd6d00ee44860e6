"""Waterflow workflow-side control-flow nodes flow/condition, flow/loop, flow/sleep."""
