"""Platform simulators for the demo stack and the tests: a live database, services, RPC."""
