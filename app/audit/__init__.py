"""Audit trail: recording events, the Logs page, CSV reports and retention."""
