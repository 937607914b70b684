"""Everything an app author touches: the SDK and the shipped Python apps."""
