"""Dataset delivery: requests, reservations, archives and download links."""
