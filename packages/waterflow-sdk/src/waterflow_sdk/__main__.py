"""``python -m waterflow_sdk`` runs the ``waterflow`` command."""

from .cli import main

main()
