"""Domain events: envelope, transactional outbox, relay to Redis Streams, consumers."""
