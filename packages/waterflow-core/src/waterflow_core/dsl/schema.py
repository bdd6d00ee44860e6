"""JSON Schema of the workflow DSL, for editors that validate as the user types."""

from __future__ import annotations

import json
from typing import Any

from .models import Workflow

SCHEMA_ID = "https://waterflow.dev/schema/workflow.json"


def workflow_json_schema() -> dict[str, Any]:
    """The DSL's JSON Schema (draft 2020-12), keys as written in YAML."""
    schema = Workflow.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def main() -> None:
    """``python -m waterflow_core.dsl.schema`` prints the schema (``waterflow schema`` does too)."""
    print(json.dumps(workflow_json_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
