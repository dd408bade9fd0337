from ledger_api.cli import app

app()
