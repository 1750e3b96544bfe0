"""The per-developer side: daemon, CLI, transport to the team server."""
