"""Stand-ins for the outside services Frontdesk talks to, speaking only their wire protocols."""
