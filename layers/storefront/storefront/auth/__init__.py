"""Authentication: who is calling (JWT bearer tokens) and what they may do."""
