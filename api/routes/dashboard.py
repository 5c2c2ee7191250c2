"""The dashboard: static HTML and hand-written JS modules in api/static/, plus plotly.js.

plotly.min.js is served straight from the installed ``plotly`` Python package (its
package_data), so the dashboard works offline on a plant network and no third-party bundle is
copied into this repository. The pages need no token to load; every API call they make does.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.problems import Problem

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@cache
def plotly_js() -> Path:
    """Path of plotly.min.js inside the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise FileNotFoundError(f"{path}: plotly.min.js missing; reinstall the plotly package")
    return path


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/static/vendor/plotly.min.js")
def plotly_bundle() -> FileResponse:
    try:
        path = plotly_js()
    except FileNotFoundError as exc:
        raise Problem(404, "Not found", str(exc)) from None
    # Immutable for a given plotly version; a day of caching spares a 4 MB download per page.
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


def install(app: FastAPI) -> None:
    """Add the dashboard routes and the static files to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
