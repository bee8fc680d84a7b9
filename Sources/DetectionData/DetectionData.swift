// The DetectionData module; see docs/architecture.md.
