"""Live incident changes for browsers and tools: the change feed (feed.py) written in
the changing transactions, one reader per process fanning it out (hub.py), and
GET /api/v1/stream as Server-Sent Events (api.py), served by the stream server
(wsgi.py, gunicorn_conf.py) beside the receiver."""
