"""HTTP plumbing shared by every API function: errors, middleware, health, caching."""
