"""The console's widgets: each small, styled by theme variables only."""
