"""Tests of the app SDK: error mapping, restarts, client deadlines, parent death, atomic writes, the host."""
