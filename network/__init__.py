"""The command centre's network: topology from LLDP and declared links (issue 20 item 2)."""
