"""Local mode: the whole system in one process on an embedded moto backend."""
