"""Data layer: models, sessions, migrations, ingestion and the wiki index."""
