//! Amazon ECR: authorization token, repository creation and hygiene, image size and scan findings.
