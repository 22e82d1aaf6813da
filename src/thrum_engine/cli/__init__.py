"""The headless command line. `main` and `args` stay stdlib-only and import-light;
each command's module is imported only when that command runs."""
