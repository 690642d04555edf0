"""Treatment sessions on the bench: configure, verify, deliver, record."""
