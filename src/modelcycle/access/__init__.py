"""Who may do what: users with roles, their API keys, and the identities that decide releases."""
