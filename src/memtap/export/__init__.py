"""Writing traces in other tools' formats: CSV and Parquet, and QEMTrace's text lines."""
