"""The face service: camera, detection, embedding, matching (the pipeline arrives with issue 6)."""
