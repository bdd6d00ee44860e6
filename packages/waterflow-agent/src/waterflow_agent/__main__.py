"""``python -m waterflow_agent``: the same command as ``waterflow agent``."""

from waterflow_agent.cli import main

main()
