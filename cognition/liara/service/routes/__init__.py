"""The service's routers, one per resource: crises, their events, and health."""
