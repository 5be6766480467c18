"""Groups of users and devices (local, device, LDAP, SAML): listing, details, members, edits."""
