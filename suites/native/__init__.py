"""editfleet's native JSON Lines format."""
