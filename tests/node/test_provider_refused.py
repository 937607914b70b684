"""`taskapi provider join` against a requestor that refuses its token: one clear line and a non-zero exit.

Real processes: `taskapi requestor serve` and `taskapi provider join` (tests/node/cluster.py).
"""

from __future__ import annotations

from .cluster import Cluster, wait_until


def test_provider_join_with_a_wrong_token_ends_with_one_clear_line(cluster: Cluster) -> None:
    requestor = cluster.requestor(token="the-right-token")
    intruder = cluster.provider("intruder", requestor, token="a-wrong-token")

    code = intruder.wait_exit()

    log = intruder.log_text()
    assert code == 1, log
    assert log.strip().splitlines()[-1] == f"Error: requestor at {requestor.address} refused the token"
    assert "Traceback" not in log
    assert intruder.provider_id not in requestor.store.providers()
    # The requestor is unharmed and still takes a provider with the right token.
    honest = cluster.provider("honest", requestor)
    wait_until(lambda: honest.provider_id in requestor.store.providers(), "the honest provider joining")
    assert requestor.running and honest.running
