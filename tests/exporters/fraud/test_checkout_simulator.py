"""The demo's checkout traffic against the real fraud app over HTTP."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server

from ticketmon.simulator.checkout import CheckoutSettings, run_traffic


def test_checkout_traffic_gets_decisions_and_auth_failures(fraud_app):
    server = make_server("127.0.0.1", 0, fraud_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1/fraud/check"
    try:
        counts = run_traffic(CheckoutSettings(url=url, token="tm_checkout_token_0123456789",
                                              tenant="acme", checks_per_second=100, bot_share=0.3,
                                              duration_seconds=1, seed=4))
        assert counts.get("allow", 0) > 20 and counts.get("block", 0) > 5, counts
        refused = run_traffic(CheckoutSettings(url=url, token="tm_wrong_token_0000000000",
                                               checks_per_second=50, duration_seconds=0.2))
        assert set(refused) == {"401"}
    finally:
        server.shutdown()
