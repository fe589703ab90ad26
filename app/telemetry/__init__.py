"""What the service reports about itself: log lines, request ids, metrics and traces."""
