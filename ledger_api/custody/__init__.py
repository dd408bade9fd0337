"""Custody handover: a leaving member passes the records it holds to a successor member."""
