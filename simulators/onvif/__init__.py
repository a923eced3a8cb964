"""A small ONVIF camera (Profile S subset) for tests and the demo: see server.py."""
