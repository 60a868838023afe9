"""Liara as an HTTP service (``liara serve``): the agency's crises over JSON, events over SSE.

``main.create_app`` assembles the FastAPI app from ``routes``; every route calls
``LiaraTemporalAgency`` and nothing else, so the service adds transport (HTTP, auth, limits,
problem responses) and no crisis logic of its own.
"""
