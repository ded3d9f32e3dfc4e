"""Credentials, scopes and tokens. Knows nothing of HTTP."""
