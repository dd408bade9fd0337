"""Builds the member node's FastAPI app. Routes live one file per resource; errors map in one place."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from anyio.to_thread import run_sync
from fastapi import FastAPI

from ledger_api.access import anchoring as access_anchoring
from ledger_api.access.router import router as access_router
from ledger_api.access.writer import access_log
from ledger_api.apidocs import document
from ledger_api.apidocs.problem_pages import router as problem_pages_router
from ledger_api.apidocs.router import router as apidocs_router
from ledger_api.audit.router import router as audit_router
from ledger_api.auth.housekeeping import SignInHousekeeping
from ledger_api.auth.nonces import nonce_book
from ledger_api.auth.router import router as auth_router
from ledger_api.consent_requests.router import router as consent_requests_router
from ledger_api.consent_requests.service import RequestAnswers
from ledger_api.consents import relays as consent_relays
from ledger_api.consents.router import router as consents_router
from ledger_api.consortium.own_records_router import router as own_records_router
from ledger_api.consortium.router import router as consortium_router
from ledger_api.consortium.validators import ValidatorVotes
from ledger_api.core import observability, problems
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.config import Settings
from ledger_api.core.jsontext import restore_recursion_limit
from ledger_api.core.request_guard import PublicDocumentCors, RequestGuard
from ledger_api.custody import transfer as custody_transfer
from ledger_api.custody.router import router as custody_router
from ledger_api.enrolment.router import router as enrolment_router
from ledger_api.inbox.router import router as inbox_router
from ledger_api.node import Node
from ledger_api.notice.router import router as privacy_notice_router
from ledger_api.notifications.router import router as notifications_router
from ledger_api.notifications.worker import NotificationWorker
from ledger_api.ops.router import router as ops_router
from ledger_api.outbox.kinds import OutboxKind
from ledger_api.outbox.worker import OutboxWorker
from ledger_api.portal.router import router as portal_router
from ledger_api.records import anchoring as record_anchoring
from ledger_api.records import restriction as record_restriction
from ledger_api.records.blobs import sweep_orphans
from ledger_api.records.erasure import RetentionSweep
from ledger_api.records.orders_router import router as erasure_orders_router
from ledger_api.records.router import router as records_router
from ledger_api.succession.router import router as succession_router

#: every kind of chain write the outbox sends, each declared by its domain next to the code that enqueues it
OUTBOX_KINDS: tuple[type[OutboxKind[Any]], ...] = (
    *record_anchoring.KINDS,
    *record_restriction.KINDS,
    *access_anchoring.KINDS,
    *consent_relays.KINDS,
    *custody_transfer.KINDS,
)


def background_jobs(node: Node) -> tuple[OutboxWorker, NotificationWorker, list[BackgroundLoop]]:
    """The node's background jobs: the outbox sender, the notification scanner, and the others: the
    sign-in housekeeping and, on a network where members vote validators, the validator votes (one of
    each per node), the retention job that shreds records past their retention end, and the scan for
    grants that answer this hospital's consent requests."""
    others: list[BackgroundLoop] = [SignInHousekeeping(node), RetentionSweep(node), RequestAnswers(node)]
    if node.settings.chain.validator_votes is not None:
        others.append(ValidatorVotes(node))
    return OutboxWorker(node, OUTBOX_KINDS), NotificationWorker(node), others


def create_app(node: Node) -> FastAPI:
    """The app for one node; the background jobs run while the app does (unless disabled in settings:
    ``medledger serve --workers N`` runs them in a process of their own)."""
    restore_recursion_limit()  # an import (py_ecc) raised it to 100,000: deep input must not reach the C stack
    worker, notifier, others = background_jobs(node)
    # the node's parts, opened now with its database as it starts (not by whichever request comes first)
    nonce_book(node)
    access_log(node)

    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if node.settings.run_outbox_worker:
            if node.settings.sweep_at_start:  # the only process of this node: tidy what a crash left
                await run_sync(
                    partial(sweep_orphans, node.engine, node.blob_dir, older_than=started, vault=node.key_vault)
                )
            for job in (worker, notifier, *others):
                job.start()
        try:
            yield
        finally:
            for job in (worker, notifier, *others):
                job.stop()

    app = _bare_app(node.settings, lifespan)
    app.state.node = node
    app.state.worker = worker
    app.state.notifier = notifier
    problems.install(app)
    observability.install(app, observability.Metrics())
    app.add_middleware(RequestGuard, limit=node.settings.limits.max_upload_bytes)  # outermost: before any route
    app.add_middleware(PublicDocumentCors)
    return app


def _bare_app(settings: Settings, lifespan: Any = None) -> FastAPI:
    """The routes and the finished OpenAPI document; no node, no middleware."""
    app = FastAPI(
        title=f"MedLedger member node — {settings.node_name}",
        version="1.0.0",
        description="Patient-controlled sharing of encrypted medical records across a hospital consortium. "
        "Members sign every request (X-MedLedger-* headers, docs/request-signature.md); patients sign in "
        "with Ethereum (EIP-4361). Errors are RFC 9457 problem details whose `type` resolves on the node.",
        lifespan=lifespan,
        docs_url=None,  # served from pinned local files instead (ledger_api.apidocs): never a CDN
        redoc_url=None,
    )
    for router in (
        records_router,
        erasure_orders_router,
        own_records_router,
        enrolment_router,
        consent_requests_router,
        inbox_router,
        consents_router,
        privacy_notice_router,
        access_router,
        audit_router,
        notifications_router,
        custody_router,
        succession_router,
        consortium_router,
        auth_router,
        ops_router,
        portal_router,
        apidocs_router,
        problem_pages_router,
    ):
        app.include_router(router)
    app.openapi = partial(document.build, app, settings)  # type: ignore[method-assign]
    return app


def api_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document a node with these settings serves (for linters and generators: no chain needed)."""
    return _bare_app(settings).openapi()
