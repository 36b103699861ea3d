"""Persistence: the factory database (SQLAlchemy + Alembic) and the object store."""
