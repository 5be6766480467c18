"""Account configuration (owner), profile (everyone) and account memberships."""
