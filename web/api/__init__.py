"""The REST API v1 under /api/v1: one module per resource (artworks, photos, compositions,
kiosks), the route table and OpenAPI document built from their operations (routes.py,
openapi.py), and RFC 9457 problem details for every error (problems.py).

Authentication (bearer API tokens, or a staff session with its CSRF token) and scopes are
web/staff.py's; the tokens themselves are db/api_tokens.py's.
"""
