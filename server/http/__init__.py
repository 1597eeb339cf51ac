"""The one port: pages, /api, /ws, TLS."""
