"""A Golem-style app for tests: what an app built on Golem's SDK does on the wire (see app/golemfixture)."""
