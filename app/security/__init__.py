"""Account security settings: MFA policy and audit logging."""
