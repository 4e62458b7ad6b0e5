from engine.kit import project  # noqa: F401  (the fixture)
