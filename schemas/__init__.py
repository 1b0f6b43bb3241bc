"""Table definitions, one module per layer: Spark types, constraints, properties."""
