"""MedLedger cryptography (imported as ``medledger_crypto``; see pyproject.toml for why)."""
