-- SQLite's collectors exclude each other with lock files now (storage/metadata/host_locks.py),
-- which die with their holder; a lease row outlived a collector killed with -9 by ten minutes.
-- Dropped rather than left unused: a collector of an older release still running beside the
-- upgraded ones then fails to take its lock, instead of running unexcluded.
DROP TABLE IF EXISTS gc_leases;
