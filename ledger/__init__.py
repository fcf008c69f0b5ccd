"""Referral Ledger: the write side and the domain (aggregates, application, storage)."""
