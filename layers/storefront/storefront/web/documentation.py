"""``GET /openapi.json`` and ``GET /docs``: the whole HTTP API's one document.

The document is written by the build (``make openapi``, run by ``make
build``) into the package as ``openapi.json``, from every API function's
app (:func:`storefront.wiring.api_document`), and read here once per
container: the catalog function serves it without importing the other
functions' code. A test holds the file to the code.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["DOCUMENT", "router"]

DOCUMENT = "openapi.json"

router = APIRouter(include_in_schema=False)


@cache
def _document() -> bytes:
    return files("storefront").joinpath(DOCUMENT).read_bytes()


@router.get("/openapi.json")
async def openapi_document() -> Response:
    return Response(
        _document(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/docs")
async def interactive_page() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Storefront API")
