"""The node: a requestor that hands subtasks to providers over gRPC and never loses work, and providers."""
