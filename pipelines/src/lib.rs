//! Doorstep pipelines.
