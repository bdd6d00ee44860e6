"""``python -m waterflow_server`` is ``waterflow server``."""

from .cli.server import server_command

server_command(prog_name="python -m waterflow_server")
