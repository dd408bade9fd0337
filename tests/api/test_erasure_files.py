"""After an erasure the node holds no means to decrypt the record in any file it wrote: not in the
database, its write-ahead log or free pages (SQLite and PostgreSQL alike), not in the key vault, not
in the blob store (issue: hostile patients and members, 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from medledger_crypto import WrapContext, is_sealed, unwrap_data_key
from sqlmodel import select

from ledger_api.core.db import session_scope, sqlite_file
from ledger_api.errors import NotFound
from ledger_api.records.blobs import sweep_orphans
from ledger_api.records.models import WrappedKey
from tests.api.conftest import World
from tests.utils import postgres
from tests.utils.records import PAST_RETENTION, upload


def _files_the_node_wrote(world: World) -> list[Path]:
    node = world.node.node
    roots = [node.settings.data_dir]
    database = sqlite_file(node.settings.resolved_database_url)
    if database is not None:
        roots.append(database.parent)
    else:
        with node.engine.connect() as connection:  # everything PostgreSQL holds in memory goes to its files
            connection.exec_driver_sql("CHECKPOINT")
            oid = connection.exec_driver_sql(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).scalar_one()
        # this node's database (heap, free pages, indexes), the server-wide catalogs and the write-ahead log
        server = postgres.data_directory()
        roots += [server / "base" / str(oid), server / "global", server / "pg_wal"]
    # os.walk, not rglob: the server recycles log segments while this one scans
    return sorted({Path(top) / name for root in roots for top, _, names in os.walk(root) for name in names})


def _content(path: Path) -> bytes:
    """What a file holds; one the server removed (a recycled log segment) holds nothing any more."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def test_erasure_destroys_every_means_to_decrypt_that_the_node_holds(world: World) -> None:
    node = world.node.node
    record_id = upload(world, body=b"HIV viral load: undetectable" * 100, **PAST_RETENTION).json()["id"]
    kek_file = node.settings.vault_dir / record_id[:2] / record_id
    kek = kek_file.read_bytes()
    with session_scope(node.engine) as session:
        stored = session.exec(select(WrappedKey.wrapped).where(WrappedKey.record_id == record_id)).one()
    assert is_sealed(stored)  # the database only ever held the wrapped key sealed under the vault's key
    wrapped = node.key_vault.open(record_id, stored)
    data_key = unwrap_data_key(
        wrapped, node.identity.hpke_keys(), WrapContext(bytes.fromhex(record_id), 1, node.address)
    )
    data_key.destroy()  # with the vault key, the node's own keystore opens it: that is what must end

    with world.node.member_client(world.a.account) as client:
        assert client.delete(f"/v1/records/{record_id}").status_code == 200

    assert not kek_file.exists()
    scanned = _files_the_node_wrote(world)
    assert any(p.suffix in ("", ".db", ".db-wal") for p in scanned)
    for path in scanned:
        content = _content(path)
        assert kek not in content, f"the record's key-encryption key survives in {path}"
        assert wrapped not in content, f"the record's wrapped data key survives unsealed in {path}"
    with pytest.raises(NotFound):  # what a database copy may still hold no longer opens
        node.key_vault.open(record_id, stored)


def test_a_key_left_by_a_crash_after_the_erasure_committed_is_destroyed_at_start(world: World) -> None:
    node = world.node.node
    record_id = upload(world, **PAST_RETENTION).json()["id"]
    kept = node.key_vault.kek(record_id).to_bytes()
    with world.node.member_client(world.a.account) as client:
        assert client.delete(f"/v1/records/{record_id}").status_code == 200
    kek_file = node.settings.vault_dir / record_id[:2] / record_id
    kek_file.parent.mkdir(parents=True, exist_ok=True)
    kek_file.write_bytes(kept)  # as if the process died between the commit and the shredding
    live = upload(world).json()["id"]
    assert sweep_orphans(node.engine, node.blob_dir, older_than=0, vault=node.key_vault) == 1
    assert not kek_file.exists()
    assert node.key_vault.record_ids() == {live}  # a live record's key is left alone
