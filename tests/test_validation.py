"""Validation errors: 400 for unreadable bodies, 422 for schema mismatches; secrets and bodies never echoed.
And the error answers the core declares in the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, SecretStr

from core import RouterContribution, hookimpl
from core.testing import client_for
from core.validation import EXCERPT_CHARS

SECRET = "sk-live-0123456789abcdef"


class Credential(BaseModel):
    name: str
    value: SecretStr  # secret by type, whatever its name
    api_key: str | None = None  # secret by name, whatever its type
    note: str = Field("", max_length=10)
    tags: list[str] = []


class Outer(BaseModel):
    credentials: list[Credential]


@pytest.fixture
def plughost_app(make_app):
    router = APIRouter()

    @router.post("/api/credentials")
    async def create(credential: Credential) -> dict[str, str]:
        return {"name": credential.name}

    @router.post("/api/outer")
    async def outer(body: Outer) -> int:
        return len(body.credentials)

    @router.get("/api/range/{item_id}")
    async def ranged(item_id: int, limit: Annotated[int, Query(ge=1, le=10)] = 5) -> int:
        return item_id + limit

    class Plugin:
        PLUGHOST_NAME = "validated"

        @hookimpl
        def plughost_routers(self, host):
            return RouterContribution("validated", router)

    return make_app([Plugin()])


def test_secret_fields_are_never_echoed_by_type_or_by_name(client) -> None:
    response = client.post("/api/credentials", json={"name": "k", "value": [SECRET], "api_key": [SECRET]})
    assert response.status_code == 422
    assert SECRET not in response.text
    problems = {tuple(p["loc"]): p for p in response.json()["detail"]}
    assert set(problems) == {("body", "value"), ("body", "api_key")}
    assert all("input" not in p for p in problems.values())


def test_a_secret_nested_in_lists_of_models_is_found_by_type(client) -> None:
    response = client.post("/api/outer", json={"credentials": [{"name": "k", "value": {"raw": SECRET}}]})
    assert response.status_code == 422 and SECRET not in response.text


def test_other_inputs_are_echoed_as_short_excerpts_and_the_body_never_whole(client) -> None:
    long_note = "n" * 10_000
    response = client.post("/api/credentials", json={"value": SECRET, "note": long_note, "tags": "not-a-list"})
    assert response.status_code == 422
    assert SECRET not in response.text and len(response.text) < 1000
    problems = {tuple(p["loc"]): p for p in response.json()["detail"]}
    assert "input" not in problems[("body", "name")]  # a missing field's input is the whole body
    assert problems[("body", "note")]["input"] == "n" * EXCERPT_CHARS + "… (10000 characters)"
    assert problems[("body", "tags")]["input"] == "not-a-list"


def test_unreadable_json_is_400_and_schema_mismatches_are_422(client) -> None:
    broken = client.post("/api/credentials", content=b'{"name": ', headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    out_of_range = client.get("/api/range/1", params={"limit": 11})
    assert out_of_range.status_code == 422
    assert out_of_range.json()["detail"] == [
        {
            "type": "less_than_equal",
            "loc": ["query", "limit"],
            "msg": "Input should be less than or equal to 10",
            "input": "11",
        }
    ]


def test_the_openapi_schema_declares_the_cores_error_answers(client) -> None:
    schema = client.get("/openapi.json").json()
    create = schema["paths"]["/api/credentials"]["post"]["responses"]
    assert {"400", "413", "422", "503"} <= set(create)
    assert create["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "Retry-After" in create["503"]["headers"]
    ranged = schema["paths"]["/api/range/{item_id}"]["get"]["responses"]
    assert {"404", "422", "503"} <= set(ranged) and "413" not in ranged
    assert set(schema["paths"]["/health"]["get"]["responses"]) == {"200"}
    assert "detail" in schema["components"]["schemas"]["Error"]["properties"]


def test_the_gateway_secrets_422_does_not_echo_the_api_key(make_app) -> None:
    """The issue's case: a 422 on POST /api/gateway/secrets echoed the whole body, api_key included."""
    with client_for(make_app(["gateway"]), base_url="http://localhost") as client:
        response = client.post("/api/gateway/secrets", json={"api_key": SECRET, "base_url": ["not", "a", "url"]})
        assert response.status_code == 422
        assert SECRET not in response.text
        assert {tuple(p["loc"]) for p in response.json()["detail"]} >= {("body", "name"), ("body", "base_url")}
