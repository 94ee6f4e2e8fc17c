"""Exporter framework: background snapshot collectors behind a guarded /metrics."""

from exporters.framework.server import Exporter, HttpSettings
from exporters.framework.snapshot import SnapshotCollector, render

__all__ = ["Exporter", "HttpSettings", "SnapshotCollector", "render"]
