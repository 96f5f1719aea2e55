"""Helpers the tests share, one module per thing they hold; test modules import them from here.

- `node`: a whole hub node (`Node`, `NodeSettings`, `provision`, `serve_clients`, the
  test users' `PASSWORD`, `JWT_SECRET`, `VINS`)
- `websocket`: WebSocket clients of a node, JSON frames, subscriptions
- `tcp_proxy`: a TCP proxy that cuts or stalls a connection on demand
- `audit_tamper`: SQL past the audit trail's append-only triggers
- `fleet_check`: that an unrelated vehicle's command still succeeds
- `hub_settings`, `nginx`: the deployment files' settings and nginx blocks, read

Fixtures stay in the `conftest.py` files; no test module imports another test module
(`tests/test_layering.py` holds it).
"""
