//! Amazon ECS: render the task definition by digest, update the service, watch our own deployment to a verdict, roll back.
