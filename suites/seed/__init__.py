"""the seed document's own benchmark format and its 0-10 protocol."""
