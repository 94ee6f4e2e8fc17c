"""The receiver's storage: SQLAlchemy Core tables behind one Store interface."""

from receiver.store.incident_events import IncidentEvent
from receiver.store.store import Store, StoreUnavailable

__all__ = ["IncidentEvent", "Store", "StoreUnavailable"]
