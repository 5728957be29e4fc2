"""The built-in plugins, each registered through the ``plughost.plugins`` entry point."""
