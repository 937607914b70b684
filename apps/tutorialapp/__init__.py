"""tutorialapp: proof of work. Find the smallest nonce n with sha256(f"{input}{n}") having >= difficulty
leading zero bits, splitting the nonce space into ranges computed by providers."""
