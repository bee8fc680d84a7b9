// The Estimation module; see docs/architecture.md.
