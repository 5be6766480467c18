"""Sign-in: two steps, email code or recovery code, forgot password, server-side sessions."""
