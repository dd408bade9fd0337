"""Notifications: webhooks to patients and auditors about events on their accounts, from chain events."""
