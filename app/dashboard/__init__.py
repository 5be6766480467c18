"""The landing pages: the dashboard for managers and up, My devices for users."""
