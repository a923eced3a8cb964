"""Encrypted backups of the database and the platform's folders, and their restore."""
