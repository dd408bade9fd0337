"""MedLedger member node, chain layer and command line."""
