"""The worker layer: dispatcher (claims and wakes), agents (thread pools), runner (one job)."""
