//! Integration tests: real binary, real HTTP on loopback.
