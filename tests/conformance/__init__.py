"""HTTP-level conformance tests for the OCI Distribution Specification v1.1, written from the spec."""
