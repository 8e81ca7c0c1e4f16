"""What every lockmesh process shares: message schemas, the wire format, the mesh's layout."""
