"""Alert rules, their state (firing → resolved) and the channels that carry them."""
