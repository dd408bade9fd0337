"""Serving a fixed set of files that the node ships (the portal's and the API docs' scripts and styles).

Only names in the set are served (anything else is a 404: no directory listing, no path to walk); a
file the set names but the machine lacks means ``make deps`` did not copy the pinned npm files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse

from ledger_api.errors import AssetsMissing, NotFound


def asset_response(
    directory: Path, assets: dict[str, str], name: str, headers: dict[str, str], what: str
) -> FileResponse:
    media_type = assets.get(name)
    if media_type is None:
        raise NotFound(f"no {what} asset {name!r}", code="not-found")
    path = directory / name
    if not path.is_file():
        raise AssetsMissing(f"{what} asset {name} is not built: run `make deps` (it copies the pinned npm files)")
    return FileResponse(path, media_type=media_type, headers=headers)
