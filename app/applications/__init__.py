"""Applications that whitelisting roles restrict sessions to: listing, add, edit, remove."""
