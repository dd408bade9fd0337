"""The one settings object of a member node (pydantic-settings).

Values come from environment variables prefixed ``MEDLEDGER_`` (nested with ``__``), or from a
JSON config file named by ``MEDLEDGER_CONFIG``; environment wins. Outside dev mode, settings
that would weaken security (placeholder passphrases, SQLite in a temp dir...) are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ChainSettings(BaseModel):
    """Where the chain is and how patient the node is with it."""

    #: the member's own validator
    rpc_url: str = "http://127.0.0.1:8545"
    #: other members' validators, used only while its own does not answer (see chain.endpoints)
    fallback_urls: list[str] = Field(default_factory=list, max_length=16)
    manifest_path: Path = Path("data/chain/deployment.json")
    #: blocks that must follow a transaction's block before it counts: 0 where blocks are final when
    #: sealed (QBFT, anvil), a depth on Clique, whose forks can replace the newest blocks
    confirmations: int = Field(0, ge=0, le=64)
    #: a fixed gas price (wei) for the member's transactions: 0 on consortium networks, where gas is free;
    #: None asks the node (eth_gasPrice) each time
    gas_price_wei: int | None = Field(None, ge=0)
    #: member = validator: the network whose validator votes this node casts through its own validator
    #: (see consortium.validators); None casts none (anvil, or an operator who votes by hand)
    validator_votes: Literal["clique", "istanbul", "qbft"] | None = None
    receipt_timeout_s: float = Field(30.0, gt=0)
    rpc_timeout_s: float = Field(5.0, gt=0)


class AuthSettings(BaseModel):
    signature_window_s: int = Field(60, ge=5, le=600)
    session_ttl_s: int = Field(900, ge=60, le=86_400)
    siwe_nonce_ttl_s: int = Field(300, ge=30, le=3600)
    siwe_domain: str = "localhost"
    #: anonymous sign-in challenges: per client address, a sustained rate and a burst (each costs a row)
    challenge_rate_per_minute: float = Field(30.0, gt=0, le=6000)
    challenge_burst: int = Field(10, ge=1, le=1000)
    #: unused, unexpired challenges the node holds at most; past it, 429 until the oldest expire
    max_outstanding_challenges: int = Field(2000, ge=10, le=1_000_000)


class OutboxSettings(BaseModel):
    poll_interval_s: float = Field(0.2, gt=0)
    max_attempts: int = Field(50, ge=1)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    #: access entries per Merkle batch; 1 anchors every entry on its own
    batch_size: int = Field(1, ge=1, le=10_000)
    batch_delay_s: float = Field(2.0, ge=0)


class NotificationSettings(BaseModel):
    poll_interval_s: float = Field(1.0, gt=0)
    #: blocks read per scan (one eth_getLogs)
    scan_blocks: int = Field(2000, ge=1, le=100_000)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(600.0, gt=0)
    #: one delivery attempt, connect to answer (a slow receiver holds up only itself: see notifications.delivery)
    timeout_s: float = Field(5.0, gt=0, le=60)
    #: receivers posted to at once (each receiver by one task at a time)
    parallel_receivers: int = Field(8, ge=1, le=128)
    #: active webhook subscriptions one subscriber may hold at one node
    max_subscriptions_per_subscriber: int = Field(20, ge=1, le=10_000)


class PeerSettings(BaseModel):
    """How long this node waits for another member's node (a slow peer must not hold requests hostage)."""

    #: a whole cross-member record fetch, from connecting to the last byte
    timeout_s: float = Field(30.0, gt=0, le=3600)
    #: the largest ciphertext accepted from a custodian (a record of the largest upload, encrypted)
    max_record_bytes: int = Field(2 * 1024**3 + 64 * 1024**2, ge=1024)
    #: the largest answer to a fan-out (a listing) read from one member
    max_answer_bytes: int = Field(16 * 1024**2, ge=1024)
    #: consortium fan-outs in flight: per patient (or per asking system and patient), and for the node
    fanouts_per_key: int = Field(4, ge=1, le=64)
    max_fanouts: int = Field(32, ge=1, le=4096)


class LimitSettings(BaseModel):
    max_upload_bytes: int = Field(2 * 1024**3 + 1024, ge=1024)
    max_json_bytes: int = Field(1024 * 1024, ge=1024)
    #: worker threads per API process for the per-request chain and database work (signed-request
    #: checks, record releases). Few on purpose: they share one GIL, and past a handful more threads
    #: only wait longer for it (measured: 4 threads served more fetches/s than 40, at a third of the p99).
    request_threads: int = Field(4, ge=1, le=256)
    #: how long an idle keep-alive connection stays open. Longer than clients keep idle connections for
    #: reuse (httpx and most HTTP clients: 5 s): with equal timeouts the node closes a connection just as
    #: a client sends on it, and that request fails with "server disconnected" (seen under load)
    keep_alive_s: int = Field(30, ge=1, le=600)


class RetentionSettings(BaseModel):
    """How long the consortium keeps records (医疗机构病历管理规定: outpatient at least 15 years,
    inpatient at least 30), counted from a record's last encounter; and who at this hospital may
    countersign a legal order to destroy a record before then."""

    outpatient_years: int = Field(15, ge=0, le=200)
    inpatient_years: int = Field(30, ge=0, le=200)
    #: records of no stated kind are kept as long as the longest kind: shredding early cannot be undone
    other_years: int = Field(30, ge=0, le=200)
    #: how often the retention job looks for records past their retention end
    sweep_interval_s: float = Field(3600.0, gt=0)
    #: the records officers who may countersign a legal erasure order: staff id -> their Ethereum account
    officers: dict[str, str] = Field(default_factory=dict, max_length=100)

    def years(self, kind: str) -> int:
        return {"outpatient": self.outpatient_years, "inpatient": self.inpatient_years}.get(kind, self.other_years)


class ConsentRequestSettings(BaseModel):
    """Hospitals' requests for a patient's consent: the consortium's limits (the same for every member)."""

    #: requests one member may have open for one patient at once (a patient is not to be flooded)
    max_open_per_patient: int = Field(5, ge=1, le=100)
    #: how long a patient has to answer before the request expires
    answer_within_days: int = Field(14, ge=1, le=365)
    #: the longest access a request may ask for
    max_access_days: int = Field(365, ge=1, le=3650)
    #: how often the node looks on chain for grants that answer its requests, and how many blocks at most
    poll_interval_s: float = Field(2.0, gt=0)
    scan_blocks: int = Field(1000, ge=1, le=100_000)


class Settings(BaseSettings):
    """Everything a member node is configured with."""

    model_config = SettingsConfigDict(env_prefix="MEDLEDGER_", env_nested_delimiter="__", extra="forbid")

    mode: Literal["dev", "production"] = "dev"
    node_name: str = "medledger-node"
    data_dir: Path = Path("data/node")
    database_url: str | None = None
    keystore_path: Path = Path("data/node/identity.json")
    keystore_passphrase_file: Path | None = None
    public_url: str = "http://127.0.0.1:8601"
    chain: ChainSettings = ChainSettings()
    auth: AuthSettings = AuthSettings()
    outbox: OutboxSettings = OutboxSettings()
    limits: LimitSettings = LimitSettings()
    notifications: NotificationSettings = NotificationSettings()
    peers: PeerSettings = PeerSettings()
    retention: RetentionSettings = RetentionSettings()
    consent_requests: ConsentRequestSettings = ConsentRequestSettings()
    #: members' names in other languages than the one they registered on chain: account -> language -> name
    #: (the portal shows each hospital under its name in the patient's language)
    member_names: dict[str, dict[str, str]] = Field(default_factory=dict, max_length=1000)
    #: the consortium's own privacy notice texts (``v<n>.en.md``, ``v<n>.zh.md``); none: the built-in notice
    privacy_notice_dir: Path | None = None
    #: the consortium's age (years) at which a minor's account passes to the child (the same at every member)
    minor_age_years: int = Field(14, ge=1, le=21)
    #: the API documentation page (/docs): on in dev mode, off in production unless switched on
    api_docs: bool | None = None
    #: run the background workers (outbox to the chain, notification delivery) with the app
    run_outbox_worker: bool = True
    #: API processes of ``medledger serve`` sharing one port (with more than one, the background
    #: workers run in one more process of their own)
    api_workers: int = Field(1, ge=1, le=64)
    #: delete at start what a crash left in the blob store (``medledger serve`` with several processes
    #: does it once itself, before any of them starts, and turns this off for them)
    sweep_at_start: bool = True
    #: crash drills (dev mode only): die by SIGKILL at this step, on its ``crash_after``-th pass
    crash_at: str | None = None
    crash_after: int = Field(1, ge=1)

    @property
    def dev_mode(self) -> bool:
        return self.mode == "dev"

    @property
    def api_docs_enabled(self) -> bool:
        return self.dev_mode if self.api_docs is None else self.api_docs

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ledger.db').as_posix()}"

    @property
    def vault_dir(self) -> Path:
        """The per-record key-encryption keys (see core.key_vault): keep on an overwrite-in-place file system."""
        return self.data_dir / "vault"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.mode == "production":
            if self.keystore_passphrase_file is None and not os.environ.get("MEDLEDGER_KEYSTORE_PASSPHRASE"):
                raise ValueError("production needs a keystore passphrase (file or MEDLEDGER_KEYSTORE_PASSPHRASE)")
            if self.auth.siwe_domain == "localhost":
                raise ValueError("production needs auth.siwe_domain set to the portal's real domain")
            if self.crash_at is not None:
                raise ValueError("crash drills (crash_at) are for test nodes, never production")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _JsonFileSource(settings_cls))


class _JsonFileSource(PydanticBaseSettingsSource):
    """Reads the optional JSON config file named by MEDLEDGER_CONFIG."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("MEDLEDGER_CONFIG")
        if not path:
            return {}
        try:
            loaded: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
            return loaded
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read config file {path}: {exc}") from None
