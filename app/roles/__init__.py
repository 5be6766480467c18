"""Roles: the four role types, predefined roles, listing, details, add, edit, copy, remove."""
