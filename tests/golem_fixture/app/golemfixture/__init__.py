"""A Golem-style task-api app, written here from what Golem's SDK (task-api 0.24) does on the wire.

It runs on its own stack, not ours: Python 3.7 with grpclib 0.2.4 and protobuf 3.x, with message and
service code generated from `protos/taskapi.proto` by that old toolchain (`tests/golem_fixture/setup.py`).
Like an app on Golem's SDK it:

- takes `requestor PORT` or `provider PORT` and ignores any further arguments, and listens on all
  interfaces (host '');
- keeps its work dir at the absolute `/golem/work`, whatever its current directory;
- relies on the node having made `<task_id>/{task_inputs,subtask_inputs,task_outputs,subtask_outputs}`
  before CreateTask, having shipped the resources NextSubtask named into the provider's
  `subtask_inputs/`, and having put a result into `subtask_outputs/<subtask_id>/` before Verify;
- answers every handler exception with INTERNAL and the exception's text, trailers-only with no
  content-type (old grpclib's way of sending an error);
- ends its provider server after one Compute or RunBenchmark.

The work: the sum of the squares of the integers in a task input file, split into `parts` subtasks.
"""
