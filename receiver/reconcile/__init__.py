"""Anti-entropy with Alertmanager: the worker compares the store with what Alertmanager
itself holds and corrects what lost, truncated or silenced webhook posts left wrong.

alertmanager_api  reads /api/v2/alerts and /api/v2/alerts/groups from every member
groups            which stored group (groupKey) an Alertmanager alert belongs to
corrections       the store changes, with timeline events and incident hooks
reconciler        one bounded run, its claim on PostgreSQL, metrics; the worker's thread
"""
