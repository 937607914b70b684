"""blenderapp: renders Blender scenes with Cycles (CPU) split into parts, each verified by re-rendering a
random crop, merged into frames by the requestor. Runs in the taskapi/blenderapp image (Debian's Blender)."""
