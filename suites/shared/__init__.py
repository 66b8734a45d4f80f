"""What several suites share: the sample shape and its checks, JSON Lines reading, the judge protocol
format, reply parsers, combining rules, numbers as the suites print them, layout helpers."""
