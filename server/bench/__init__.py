"""Benchmarks, and the network-namespace and test-peer helpers they share with the tests."""
