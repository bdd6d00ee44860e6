"""``python -m waterflow_agent``: the same command as ``waterflow agent``."""

from waterflow_agent.sensitive_env import take_sensitive_environment

# Before the heavy imports: if secrets are in the environment this re-executes the process
# without them, and a re-execution this early costs little.
take_sensitive_environment()

from waterflow_agent.cli import main  # noqa: E402 - see above

main()
