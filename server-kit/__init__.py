"""server-kit: stand up the team's model server and the gateway in front of it."""
