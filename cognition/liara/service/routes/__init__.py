"""The service's routers, one per resource: crises, their events, health, playbooks, approvals,
missions from action words, the caller's identity, and the console.
"""
