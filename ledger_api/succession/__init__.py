"""Succession of a patient account's key: planned rotation, recovery of a lost key, a minor's account."""
