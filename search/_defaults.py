"""Names the command line needs before anything heavy is imported (a leaf: no Optuna, no
SQLAlchemy), so that ``hpsearch --help`` answers at once. ``search._storage`` uses them."""

DEFAULT_STORAGE = "sqlite:///hpsearch.db"
STORAGE_ENV = "HPSEARCH_STORAGE"
