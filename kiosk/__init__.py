"""Service, settings, CLI and orchestration around the pure image pipeline."""
