"""Product views: counted in Redis per view, flushed to PostgreSQL on a schedule."""
