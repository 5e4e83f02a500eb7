"""Training: the single loop (``loop.train``), phases, image pools and schedules."""
