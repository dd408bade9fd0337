"""A hospital's own patient numbers (MRN) linked to patients' consortium accounts, at that hospital only."""
