"""Test support shared by every test suite and the fault suite: span factories, servers on loopback, emulators."""
