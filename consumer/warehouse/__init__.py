"""The warehouse layer: a ``Warehouse`` protocol, its DuckDB-file implementation, the batch
statements, the SQL files and the reports."""
