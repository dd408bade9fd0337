#!/usr/bin/env python3
"""Compiles contracts/ with the pinned solc-js and writes the committed ABI + bytecode artifacts.

Run after changing any .sol file: ``make contracts`` (tests fail while artifacts are stale).
"""

from ledger_api.chain.compiler import compile_contracts, write_artifacts


def main() -> None:
    for path in write_artifacts(compile_contracts()):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
