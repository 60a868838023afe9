"""Liara as an HTTP service (``liara serve``): the agency's crises over JSON, events over SSE,
and the operator console in the browser on both.

``main.create_app`` assembles the FastAPI app from ``routes``; every route calls
``LiaraTemporalAgency`` and nothing else, so the service adds transport (HTTP, auth, limits,
problem responses) and no crisis logic of its own.
"""
