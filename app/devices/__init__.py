"""Devices of an account: enrolment, tokens, the listing, Enroll, edits, favourites, removal."""
