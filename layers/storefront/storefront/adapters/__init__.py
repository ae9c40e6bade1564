"""Adapters: PostgreSQL, Redis and the cache built on it."""
