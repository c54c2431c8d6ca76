"""Settlement's reads: exposure and the pre-trade check, cycles as the API shows them."""
