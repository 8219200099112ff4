"""Fault checks against the real stack: PostgreSQL restart, SMTP outage, worker killed."""
