"""The HTTP API's request bodies as models, and its OpenAPI document built from them.

A handler declares what it takes and answers with `@api(...)`; the request body is
validated with the same pydantic model the document's schema is generated from, so
the document cannot drift from what the server accepts. `openapi(app)` walks the
app's routes and collects every declared handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from avatar_agent.core.httpjson import error, json_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
API_ATTR = "__api__"


class Body(BaseModel):
    # Unknown keys are ignored: an older server must take a newer page's request.
    model_config = ConfigDict(extra="ignore", strict=True)


class Consent(Body):
    analysis: bool = Field(False, description="the customer agreed to affect analysis")


class OfferBody(Body):
    sdp: str = Field(min_length=1, description="the page's SDP offer, ICE gathered")
    type: Literal["offer"]
    consent: Consent = Consent()
    join_token: str | None = Field(None, description="from POST /api/join, used once")

    @field_validator("sdp")
    @classmethod
    def _is_offer(cls, sdp: str) -> str:
        if not sdp.lstrip().startswith("v=0"):
            raise ValueError("not an SDP offer (it must start with v=0)")
        return sdp


class LoginBody(Body):
    name: str = Field(min_length=1)
    password: str = Field(min_length=1)


class SayBody(Body):
    text: str


class ErrorBody(BaseModel):
    error: str


def parse(model: type[M], data: dict[str, Any]) -> M | web.Response:
    """`data` as `model`, or a 400 naming the first field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        msg = first["msg"].removeprefix("Value error, ")
        return error(400, f"'{where}': {msg}")


async def read_body(request: web.Request, model: type[M],
                    limit: int | None = None) -> M | web.Response:
    """The request's JSON body as `model`, or the 4xx response to send instead."""
    data = await json_body(request, limit)
    if isinstance(data, web.Response):
        return data
    return parse(model, data)


@dataclass(frozen=True)
class Doc:
    summary: str
    body: type[BaseModel] | None = None
    # status -> (description, content type); errors are always JSON `ErrorBody`
    responses: dict[int, tuple[str, str]] = field(default_factory=dict)
    operator: bool = False  # needs an operator's login (bearer token or cookie)


def api(summary: str, *, body: type[BaseModel] | None = None, operator: bool = False,
        responses: dict[int, tuple[str, str]] | None = None) -> Callable[[Handler], Handler]:
    """Declare a handler for the OpenAPI document (put it above any auth wrapper)."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, API_ATTR, Doc(summary, body, responses or {}, operator))
        return handler
    return mark


def _operation(doc: Doc, path_params: list[str]) -> dict[str, Any]:
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    responses: dict[str, Any] = {}
    for status, (desc, ctype) in sorted(doc.responses.items()):
        schema: dict[str, Any] = {"type": "object"} if ctype == "application/json" else {}
        responses[str(status)] = {"description": desc, "content": {ctype: {"schema": schema}}}
    for status, desc in ((400, "bad request"), (401, "login required"), (403, "refused"),
                         (404, "not found"), (413, "too large"), (429, "slow down"),
                         (503, "busy")):
        responses.setdefault(str(status), {"description": desc, "content": error_ref})
    op: dict[str, Any] = {"summary": doc.summary, "responses": responses}
    if path_params:
        op["parameters"] = [{"name": p, "in": "path", "required": True,
                             "schema": {"type": "string"}} for p in path_params]
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{doc.body.__name__}"}}}}
    if doc.operator:
        op["security"] = [{"bearer": []}, {"cookie": []}]
    return op


def openapi(app: web.Application, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: set[type[BaseModel]] = {ErrorBody}
    for route in app.router.routes():
        doc = getattr(route.handler, API_ATTR, None)
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not isinstance(doc, Doc) or path is None or route.method == "HEAD":
            continue  # HEAD: aiohttp's automatic twin of each GET
        # aiohttp's `{fmt:json|csv}` becomes a plain OpenAPI parameter
        params = [p.split(":")[0] for p in _braced(path)]
        for p in _braced(path):
            path = path.replace("{" + p + "}", "{" + p.split(":")[0] + "}")
        paths.setdefault(path, {})[route.method.lower()] = _operation(doc, params)
        if doc.body is not None:
            models.add(doc.body)
    schemas: dict[str, Any] = {}
    for model in sorted(models, key=lambda m: m.__name__):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "avatar_operator"}}},
    }


def _braced(path: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in path:
        if ch == "{":
            depth, cur = depth + 1, ""
        elif ch == "}":
            depth -= 1
            out.append(cur)
        elif depth:
            cur += ch
    return out
