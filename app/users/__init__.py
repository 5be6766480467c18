"""Users of an account: listing, invitations, details, edits, removal, licence limits."""
