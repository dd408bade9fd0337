"""Background thread: reads new chain events into notifications, then delivers due webhooks.

Scanning moves a block cursor forward in the same transaction as the notifications it creates,
so each event is matched once. Delivery is at least once: a 2xx answer marks a notification
delivered; anything else (an error status, a timeout, a refused connection) retries with
exponential backoff until ``notifications.max_attempts``, then marks it failed. Receivers dedupe
by the ``X-MedLedger-Event-Id`` header.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

import httpx
import structlog
from sqlmodel import col, select

from ledger_api.chain.block_clock import BlockClock
from ledger_api.chain.transactions import chain_call
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import session_scope
from ledger_api.node import Node
from ledger_api.notifications import service
from ledger_api.notifications.delivery import ReceiverRefused, post_pinned, receiver_key
from ledger_api.notifications.events import payload, read_events
from ledger_api.notifications.models import Notification, Subscription

log = structlog.get_logger("medledger.notifications")


class NotificationWorker(BackgroundLoop):
    """``run_once`` (scan, then deliver) is what tests call; ``start`` runs it in a loop."""

    job = "notifications"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self._clock = BlockClock(node.chain.reader)
        self._http: httpx.Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        #: receivers with a delivery task running (skipped until it ends)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    def tick(self) -> int:
        return self.run_once()

    def idle_interval_s(self) -> float:
        return self.node.settings.notifications.poll_interval_s

    def stop(self) -> None:
        super().stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._http is not None:
            self._http.close()

    def run_once(self) -> int:
        return self.scan() + self.deliver()

    # ------------------------------------------------------------------------------------------
    def scan(self) -> int:
        """Matches the events of the next range of blocks; returns how many notifications it created."""
        settings = self.node.settings
        head = int(chain_call(lambda: self.node.w3.eth.block_number)) - settings.chain.confirmations
        with session_scope(self.node.engine) as session:
            subscriptions = list(session.exec(select(Subscription).where(col(Subscription.active))))
            done = service.cursor(session)
            if not subscriptions:  # nothing wanted: keep up with the head without reading anything
                if done is None or done < head:
                    service.record_matches(session, [], {}, subscriptions=[], through_block=head)
                return 0
        if done is None:
            done = min(s.from_block for s in subscriptions) - 1
        if done >= head:
            return 0
        high = min(head, done + settings.notifications.scan_blocks)
        events = read_events(self.node, done + 1, high)
        payloads = {e.event_id: payload(e, self.node, self._clock) for e in events}
        with session_scope(self.node.engine) as session:
            if service.cursor(session) not in (None, done):
                return 0  # another scanner moved on meanwhile
            created = service.record_matches(session, events, payloads, subscriptions=subscriptions, through_block=high)
        if created:
            log.info("notifications_matched", count=created, through_block=high)
        return created + (1 if high < head else 0)

    # ------------------------------------------------------------------------------------------
    def deliver(self, limit: int = 50) -> int:
        """Posts every due notification once, receivers in parallel; returns how many were attempted.

        Each receiver gets one task (its due notifications in order); a receiver whose task from an
        earlier round is still running is skipped this round. The round waits for its own tasks at
        most one delivery timeout, then leaves stragglers running: the scan and the next round go on.
        """
        moment = datetime.now(UTC)
        with session_scope(self.node.engine) as session:
            due = list(
                session.exec(
                    select(Notification, Subscription)
                    .join(Subscription, col(Subscription.id) == Notification.subscription_id)
                    .where(col(Notification.state) == "pending", col(Notification.next_attempt_at) <= moment)
                    .order_by(col(Notification.id))
                    .limit(limit)
                )
            )
        by_receiver: dict[str, list[tuple[Notification, Subscription]]] = {}
        for notification, subscription in due:
            by_receiver.setdefault(receiver_key(subscription.url), []).append((notification, subscription))
        futures, attempted = [], 0
        with self._busy_lock:
            for receiver, items in by_receiver.items():
                if receiver in self._busy:
                    continue
                self._busy.add(receiver)
                attempted += len(items)
                futures.append(self._pool().submit(self._deliver_to, receiver, items))
        wait(futures, timeout=self.node.settings.notifications.timeout_s + 1)
        return attempted

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.node.settings.notifications.parallel_receivers, thread_name_prefix="webhook"
            )
        return self._executor

    def _deliver_to(self, receiver: str, items: list[tuple[Notification, Subscription]]) -> None:
        try:
            for notification, subscription in items:
                if service.end_if_not_entitled(self.node, subscription):  # the right, read from the chain now
                    if not self._post(notification, subscription):
                        break  # this receiver failed: the rest wait for their own retry time
        except Exception:
            log.exception("notification_delivery_task_failed")
        finally:
            with self._busy_lock:
                self._busy.discard(receiver)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.node.settings.notifications.timeout_s, follow_redirects=False)
        return self._http

    def _post(self, notification: Notification, subscription: Subscription) -> bool:
        """One attempt; whether the receiver accepted it. The detail goes to the log, not the subscriber."""
        body = service.body_of(notification)
        headers = {
            "content-type": "application/json",
            "user-agent": "MedLedger-Webhook/1",
            service.SIGNATURE_HEADER: service.sign(subscription.secret, body),
            service.EVENT_ID_HEADER: notification.event_id,
            service.EVENT_TYPE_HEADER: notification.event_type,
        }
        status, error = None, None
        try:
            status = post_pinned(
                self._client(), service.receiver_policy(self.node), subscription.url, content=body, headers=headers
            ).status_code
            if not 200 <= status < 300:
                error = f"receiver answered {status}"
        except ReceiverRefused as exc:
            error = f"refused: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        moment = datetime.now(UTC)
        with session_scope(self.node.engine) as session:
            row = session.get(Notification, notification.id)
            if row is None or row.state != "pending":
                return error is None
            row.attempts += 1
            row.last_status, row.last_error = status, error
            if error is None:
                row.state, row.delivered_at = "delivered", moment
            elif row.attempts >= self.node.settings.notifications.max_attempts:
                row.state = "failed"
            else:
                row.next_attempt_at = moment + service.backoff(self.node, row.attempts)
            session.add(row)
        log.info(
            "notification_delivery",
            event_type=notification.event_type,
            state=row.state,
            attempts=row.attempts,
            status=status,
            error=error,
        )
        return error is None
