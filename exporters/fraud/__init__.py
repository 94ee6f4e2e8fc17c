"""The fraud check service: a real-time scalper/bot check whose outcomes are metrics."""
