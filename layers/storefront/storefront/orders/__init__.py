"""Orders: placing, confirming, rejecting and cancelling them."""
