"""The `cityops` command: sits on top of every package and registers each one's commands
(`python -m cli` or the `cityops` script). Nothing imports it but the entry points."""
