"""Agents in tmux: runtime presets, sessions (libtmux), streamed pane output and the state
derived from it, the per-session command queue, and nudges."""
