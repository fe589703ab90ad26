"""The OpenAPI document and interactive docs, served with no outside network."""

from pathlib import Path

import flask_openapi3_swagger
from flask import Blueprint, current_app

from app.api import openapi
from app.web.auth import public
from app.web.responses import Response

# Swagger UI's assets as shipped in a PyPI package: /docs loads nothing from elsewhere.
SWAGGER_ASSETS = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"

bp = Blueprint("docs", __name__, static_folder=SWAGGER_ASSETS, static_url_path="/docs/static")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API documentation</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/docs/static/css/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/js/swagger-ui-bundle.js"></script>
  <script src="/docs/static/js/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      validatorUrl: null
    }});
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
@public
def get_openapi() -> Response:
    """Serve the OpenAPI 3.1 document (built once)."""
    return Response(openapi.served_bytes(current_app), mimetype="application/json")


@bp.get("/docs")
@public
def get_docs() -> Response:
    """Serve Swagger UI for the document."""
    title = current_app.extensions[openapi.DOCUMENT]["info"]["title"]
    return Response(_PAGE.format(title=title), mimetype="text/html")
