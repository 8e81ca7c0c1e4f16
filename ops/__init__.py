"""Running the mesh: supervisord, the CLI, the tap, the load tools, deployment on a Pi."""
