"""`taskapi conformance`: a black-box, Hypothesis-driven conformance suite for task-api apps."""
