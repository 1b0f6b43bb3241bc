"""Spark jobs: one module per job, each `(spark, config) -> result` over Delta tables."""
