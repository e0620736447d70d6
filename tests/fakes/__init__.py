"""Scripted third parties on loopback (model providers, tool APIs, OAuth servers) for the tests."""
