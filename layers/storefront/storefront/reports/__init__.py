"""Reports: aggregates built by a worker, streamed to S3, downloaded through presigned URLs."""
