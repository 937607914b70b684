"""Property-based tests of the task-api protocol against real app servers over real gRPC."""
