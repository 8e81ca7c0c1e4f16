"""One package per process of the mesh, and the base they all stand on."""
