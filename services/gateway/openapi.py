"""The OpenAPI 3.1 document of the app's API, made from the route table (app.ROUTES).

One place: a route's body schema is its message's fields (bodies.py), so what this says
is what the gate checks. The fuzz test (tests/test_gateway_fuzz.py) draws requests from it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Protocol, Sequence

from services.gateway.bodies import MAX_BODY_BYTES, Body, Query, field_schema

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}
CHANGING = ("post", "put", "patch", "delete")


class RouteLike(Protocol):  # app.Route, read only
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def body(self) -> Body | None: ...
    @property
    def query(self) -> Query | None: ...
    @property
    def auth(self) -> bool: ...
    @property
    def ok(self) -> int: ...
    @property
    def content(self) -> str: ...


def document(routes: Sequence[RouteLike], cookie: str, csrf_header: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, csrf_header)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lockmesh owner app",
            "version": "1",
            "description": (
                "Policy decides; the gateway translates. Errors are {error, detail} with a "
                f"4xx; bodies over {MAX_BODY_BYTES} bytes are refused 413. Changes need the "
                f"{csrf_header} header of the session."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": cookie}},
        },
    }


def operation(route: RouteLike, csrf_header: str) -> dict[str, Any]:
    method = route.method.lower()
    op: dict[str, Any] = {
        "operationId": _operation_id(method, route.path),
        "summary": route.summary,
        "responses": {
            str(route.ok): {
                "description": "done",
                "content": {route.content: {"schema": {}}},
            },
            "4XX": {
                "description": "refused",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if route.auth:
        op["security"] = [{"session": []}]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(route, name)}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in route.query.parameters().items()
        ]
    if method in CHANGING and route.auth:
        parameters.append(
            {"name": csrf_header, "in": "header", "required": True, "schema": {"type": "string"}}
        )
    if parameters:
        op["parameters"] = parameters
    if method in CHANGING and route.body is not None and route.body.fields():
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body.json_schema()}},
        }
    return op


def _path_schema(route: RouteLike, name: str) -> dict[str, Any]:
    """A path parameter's schema: its message field's, when the route has a message."""
    if route.body is None:
        return {"type": "string", "maxLength": 64}
    f = next(f for f in dataclasses.fields(route.body.message) if f.name == name)
    return field_schema(route.body.message, f)


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}") for w in path.removeprefix("/api/").split("/") if w]
    return "_".join([method, *(re.sub(r"\W", "_", w) for w in words)])
