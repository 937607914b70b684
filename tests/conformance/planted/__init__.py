"""Apps with one planted, realistic bug each: `taskapi conformance` must fail every one on the right property.

Each is a small variation of the tutorialapp (Python SDK; the wasm one in C), served as
`python -m conformance.planted.<name> requestor|provider PORT` with the tests folder on PYTHONPATH.
"""
