"""``POST /v1/validate`` lists the workflow's declared inputs: the web console's submit form is built from them."""

from __future__ import annotations

import textwrap
from typing import Any

Api = Any  # the `api` fixture of conftest.py

YAML = {"content-type": "application/yaml"}


def workflow_yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip()


FORM = workflow_yaml(
    """
    name: form
    inputs:
      version:
        type: string
        required: true
        description: Release to deploy
      env:
        type: string
        default: staging
        options: [staging, prod]
      replicas: {type: number, default: "3"}
      dry-run: {type: boolean, default: "yes"}
      labels: {type: object}
      hosts: {type: array, default: '["a", "b"]'}
    jobs:
      a:
        runs-on: local
        steps:
          - uses: exec/shell
            with: {command: echo}
    """
)


async def test_validate_lists_the_declared_inputs_typed_in_written_order(api: Api) -> None:
    response = await api.http.post("/v1/validate", content=FORM, headers=YAML)
    assert response.status_code == 200, response.text
    assert response.json()["inputs"] == [
        {
            "name": "version",
            "type": "string",
            "description": "Release to deploy",
            "required": True,
            "default": None,
            "options": None,
        },
        {
            "name": "env",
            "type": "string",
            "description": "",
            "required": False,
            "default": "staging",
            "options": ["staging", "prod"],
        },
        # Defaults come typed, as a run would get them: the form shows what a run uses.
        {"name": "replicas", "type": "number", "description": "", "required": False, "default": 3, "options": None},
        {"name": "dry-run", "type": "boolean", "description": "", "required": False, "default": True, "options": None},
        {"name": "labels", "type": "object", "description": "", "required": False, "default": None, "options": None},
        {
            "name": "hosts",
            "type": "array",
            "description": "",
            "required": False,
            "default": ["a", "b"],
            "options": None,
        },
    ]


async def test_a_workflow_without_inputs_lists_none(api: Api) -> None:
    text = workflow_yaml(
        """
        name: bare
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: echo}
        """
    )
    response = await api.http.post("/v1/validate", json={"workflow": text})
    assert response.status_code == 200, response.text
    assert response.json()["inputs"] == []


async def test_declared_inputs_come_with_inputs_checked_too(api: Api) -> None:
    """With ``inputs`` given the answer is the same list; a bad value is still a 422 naming the input."""
    ok = await api.http.post("/v1/validate", json={"workflow": FORM, "inputs": {"version": "1.2", "env": "prod"}})
    assert ok.status_code == 200, ok.text
    names = [item["name"] for item in ok.json()["inputs"]]
    assert names == ["version", "env", "replicas", "dry-run", "labels", "hosts"]
    bad = await api.http.post("/v1/validate", json={"workflow": FORM, "inputs": {"env": "qa"}})
    assert bad.status_code == 422, bad.text
    errors = {item["path"]: item for item in bad.json()["errors"]}
    assert set(errors) == {"inputs.version", "inputs.env"}
    assert errors["inputs.env"]["line"] == 0
    assert errors["inputs.env"]["message"] == "expected one of staging, prod, got 'qa'"


async def test_markup_in_a_description_comes_back_as_data(api: Api) -> None:
    """The console puts descriptions in text nodes; the API hands them over unchanged, as JSON."""
    hostile = '<img src=x onerror="alert(1)"></script>'
    text = workflow_yaml(
        f"""
        name: hostile
        inputs:
          who: {{type: string, description: '{hostile}', options: ['<b>a</b>', "b"]}}
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {{command: echo}}
        """
    )
    response = await api.http.post("/v1/validate", content=text, headers=YAML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    [declared] = response.json()["inputs"]
    assert declared["description"] == hostile
    assert declared["options"] == ["<b>a</b>", "b"]


async def test_an_invalid_workflow_is_still_a_422_with_lines(api: Api) -> None:
    text = workflow_yaml(
        """
        name: broken
        inputs:
          n: {type: integer}
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: echo}
        """
    )
    response = await api.http.post("/v1/validate", content=text, headers=YAML)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_workflow"
    [item] = body["errors"]
    assert (item["line"], item["path"]) == (3, "inputs.n.type")


async def test_the_openapi_document_describes_the_declared_inputs(api: Api) -> None:
    schemas = (await api.http.get("/openapi.json")).json()["components"]["schemas"]
    inputs = schemas["ValidateResult"]["properties"]["inputs"]
    assert inputs["items"] == {"$ref": "#/components/schemas/DeclaredInput"}
    declared = schemas["DeclaredInput"]["properties"]
    assert set(declared) == {"name", "type", "description", "required", "default", "options"}
    assert declared["type"]["enum"] == ["string", "number", "boolean", "object", "array"]
