//! The OCI distribution API (manifests, tags, sizes) spoken directly to ECR
//! or the sandbox registry.

use secrecy::SecretString;

/// Credentials for one registry host, from ECR's GetAuthorizationToken (or
/// the sandbox). The password is a secret: it is masked and only ever fed to
/// builders on stdin.
#[derive(Clone)]
pub struct RegistryAuth {
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `127.0.0.1:5000`.
    pub host: String,
    pub username: String,
    pub password: SecretString,
    /// Plain HTTP (the sandbox registry); never true for ECR.
    pub insecure: bool,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"***")
            .field("insecure", &self.insecure)
            .finish()
    }
}
