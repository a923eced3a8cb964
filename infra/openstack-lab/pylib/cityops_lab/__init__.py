"""Plug-ins and helpers for the CityOps OpenStack lab (run by Debian's /usr/bin/python3)."""
