"""gapreplay: medical LLM pretraining corpora, GAP-Replay style, on Spark and Delta Lake."""
