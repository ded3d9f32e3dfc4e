"""Real services for the tests (Redis, PostgreSQL, Ceph RGW), started on free loopback ports
by session fixtures and stopped by them. `install.sh` installs their packages."""
