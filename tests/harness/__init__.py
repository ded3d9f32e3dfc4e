"""Starting and stopping what tests and load tests run against: free loopback ports, child
processes (stopped by their own PID, never by name), a throwaway Ceph, Redis.

No pytest here: the load tests (`python loadtests/x.py`, `loadtests/run`) import it too, after
putting the repository on `sys.path` (loadtests/services.py). Failures raise `ServiceError`;
the test fixtures (tests/services/) turn it into a test failure with its message.
"""
