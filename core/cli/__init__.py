"""The ``r2c-review`` command line: the core API without a GUI.

Each subcommand group lives in its own module with a ``register(subparsers)`` function;
``app.cli`` adds the GUI commands on top, so nothing here imports Qt.
"""
