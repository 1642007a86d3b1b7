"""The project's place on disk: its home folder (runs, caches, the log) and the dashboard's admin
secret file."""
