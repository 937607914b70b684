"""The taskapi node: app catalogue, requestor, provider, CLI."""
