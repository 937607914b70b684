"""Tests of the app SDK: error mapping, restarts, the local lifecycle helper."""
