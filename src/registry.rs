//! The OCI distribution API (manifests, tags, sizes) spoken directly to ECR or the sandbox registry.
