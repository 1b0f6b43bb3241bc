"""The domain library of gapreplay: parsers, text rules and formats, with no Spark."""
