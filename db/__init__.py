"""Storage: the database (SQLAlchemy, asyncio; SQLite or PostgreSQL), its Alembic migrations,
the photo file store, and the service calls that keep rows and files consistent.

engine: URLs and connections · migrate: upgrade to head · models: the schema ·
store: photo files · images: metadata-free JPEGs · service: save, find, delete, retention.
"""
