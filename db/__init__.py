"""Database models and photo storage (SQLAlchemy). Arrives with storage and QR downloads."""
