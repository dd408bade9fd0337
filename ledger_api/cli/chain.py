"""``medledger chain``: deploy the consortium contracts, or run the embedded development chain."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ledger_api.chain.defaults import DEFAULT_BREAK_GLASS_DURATION, DEFAULT_VOTING_PERIOD
from ledger_api.cli.output import console, reported_errors

if TYPE_CHECKING:  # the chain stack loads inside the commands (see ledger_api.cli: a fast start)
    from eth_account.signers.local import LocalAccount

    from ledger_api.chain.deployment import DeploymentManifest

app = typer.Typer(help="Deploy contracts and run the local development chain.", no_args_is_help=True)


def _load_deployer(key_file: Path, passphrase_file: Path | None) -> LocalAccount:
    """Reads a V3 keystore; the passphrase comes from a file or MEDLEDGER_DEPLOYER_PASSPHRASE, never argv."""
    from eth_account import Account

    if passphrase_file is not None:
        passphrase = passphrase_file.read_text(encoding="utf-8").rstrip("\n")
    else:
        passphrase = os.environ.get("MEDLEDGER_DEPLOYER_PASSPHRASE", "")
    if not passphrase:
        raise ValueError("no deployer passphrase: set MEDLEDGER_DEPLOYER_PASSPHRASE or --passphrase-file")
    try:
        account: LocalAccount = Account.from_key(Account.decrypt(json.loads(key_file.read_text()), passphrase))
        return account
    except (ValueError, KeyError) as exc:
        raise ValueError(f"cannot open keystore {key_file}: {exc}") from None


def _print_manifest(manifest: DeploymentManifest) -> None:
    table = Table(title=f"Consortium contracts on chain {manifest.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("block", justify="right")
    for name, deployed in manifest.contracts.items():
        table.add_row(name, deployed.address, str(deployed.block_number))
    console.print(table)


@app.command()
def deploy(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of the chain (Besu, GoQuorum, anvil).")],
    genesis: Annotated[Path, typer.Option(help="Genesis members (JSON).", exists=True, dir_okay=False)],
    deployer_key: Annotated[Path, typer.Option(help="Deployer's V3 keystore.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="Where to write the deployment manifest.")] = Path("deployment.json"),
    passphrase_file: Annotated[Path | None, typer.Option(help="File holding the keystore passphrase.")] = None,
    voting_period: Annotated[
        int, typer.Option(help="Seconds a governance proposal stays open.")
    ] = DEFAULT_VOTING_PERIOD,
    break_glass_duration: Annotated[
        int, typer.Option(help="Seconds a break-glass declaration lasts.")
    ] = DEFAULT_BREAK_GLASS_DURATION,
    confirmations: Annotated[int, typer.Option(help="Blocks to wait after each transaction.")] = 0,
) -> None:
    """Deploys the four consortium contracts, wires them and writes the manifest."""
    from ledger_api.chain.backends import RpcBackend
    from ledger_api.chain.deployment import deploy_consortium
    from ledger_api.chain.genesis import load_genesis
    from ledger_api.chain.transactions import TransactionSender

    with reported_errors():
        members = load_genesis(genesis)
        account = _load_deployer(deployer_key, passphrase_file)
        backend = RpcBackend(rpc_url)
        sender = TransactionSender(backend.w3, account, confirmations=confirmations)
        manifest = deploy_consortium(
            sender, members, voting_period=voting_period, break_glass_duration=break_glass_duration
        )
        manifest.save(out)
        _print_manifest(manifest)
        console.print(f"manifest written to [bold]{out}[/bold]")


@app.command()
def genesis(
    client: Annotated[str, typer.Option(help="The validators' client: besu (production) or goquorum.")],
    network: Annotated[
        Path,
        typer.Option(
            help="The consortium's network (JSON): chain_id, block_period_s and per member its validator's "
            "node_public_key, host, p2p_port, rpc_port, archive.",
            exists=True,
            dir_okay=False,
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("network"),
) -> None:
    """Writes a real deployment's QBFT genesis, node allowlist, static peers and each validator's
    configuration (one validator per hospital); see the README, "Running a real consortium"."""
    from ledger_api.chain.production import NetworkDefinition, write_network

    with reported_errors():
        if client not in ("besu", "goquorum"):
            raise ValueError(f"--client {client}: besu or goquorum")
        definition = NetworkDefinition.model_validate_json(network.read_text(encoding="utf-8"))
        written = write_network(definition, "besu" if client == "besu" else "goquorum", out)
    table = Table(title=f"QBFT network for {client}, chain {definition.chain_id}")
    table.add_column("member")
    table.add_column("validator address")
    for validator in definition.validators:
        table.add_row(validator.member, validator.address)
    console.print(table)
    console.print(f"wrote {len(written)} files to [bold]{out}[/bold]: {', '.join(p.name for p in written)}")


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where chain state, dev keys and the manifest live.")] = Path(
        "data/chain"
    ),
    port: Annotated[int, typer.Option(help="RPC port of the local chain.")] = 8545,
) -> None:
    """Runs the embedded development chain (managed anvil) with the consortium deployed; Ctrl-C stops it."""
    from ledger_api.chain.backends import AnvilBackend
    from ledger_api.chain.devnet import start_devnet

    with reported_errors():
        devnet = start_devnet(data_dir, port=port)
    try:
        state = "reused" if devnet.reused else "deployed"
        console.print(
            f"[green]chain up[/green] at {devnet.backend.url} (chain id {devnet.manifest.chain_id}), "
            f"contracts {state}; data in {data_dir}"
        )
        _print_manifest(devnet.manifest)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print("press Ctrl-C to stop")
        try:
            while not stop.wait(0.5):
                if not isinstance(devnet.backend, AnvilBackend) or devnet.backend.process.poll() is not None:
                    raise typer.Exit(3)
        except KeyboardInterrupt:
            pass
    finally:
        devnet.backend.close()
        console.print("chain stopped; state saved")
