"""What every ticketmon process shares: configuration, JSON logs, authentication, the
database engine and the /metrics guard. The receiver, the worker, the exporters and the
fraud service import these; none of them imports another component's package."""
