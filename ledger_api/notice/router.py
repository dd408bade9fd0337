"""Routes for the consortium's privacy notice: public, as a notice must be."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ledger_api.auth.dependencies import NodeDep
from ledger_api.core.problems import responses
from ledger_api.notice import service
from ledger_api.notice.service import PrivacyNoticeView

router = APIRouter(prefix="/v1", tags=["consents"])


@router.get("/privacy-notice", response_model=PrivacyNoticeView, responses=responses(429))
def current_notice(node: NodeDep) -> PrivacyNoticeView:
    """The privacy notice in force, in English and Chinese, with its version and the SHA-256 a grant signs
    (``noticeVersion``, ``noticeHash``). Shown to the patient before every signature."""
    return service.view(node.settings.privacy_notice_dir)


@router.get("/privacy-notice/{version}", response_model=PrivacyNoticeView, responses=responses(404, 422, 429))
def notice_version(node: NodeDep, version: Annotated[int, Path(ge=1, le=0xFFFF)]) -> PrivacyNoticeView:
    """One version of the privacy notice, current or earlier: the words behind any consent signed under it."""
    return service.view(node.settings.privacy_notice_dir, version)
