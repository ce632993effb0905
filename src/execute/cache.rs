//! `fastdeploy cache prune`: the seed's "clear the cache" by hand, as one
//! command. Each selected component's registry cache tags (`cache-<branch>`
//! in its cache repository) are listed, then deleted, and each is named.
//! A repository without cache tags is bad input (exit 2) before anything is
//! deleted; so is a plan without cache.

use crate::error::{BadInput, Exit};
use crate::plan::Plan;

use super::Pipeline;

impl Pipeline<'_> {
    pub(super) async fn prune(&self, plan: &Plan) -> anyhow::Result<Exit> {
        let aws = self.connect(plan).await?;
        let mut found = Vec::new();
        for c in &plan.components {
            let Some(cache) = &c.build.cache else {
                return Err(BadInput::other(format!(
                    "component `{}` builds without registry cache (`cache: false`), so it has no cache to prune",
                    c.name
                ))
                .into());
            };
            let repo = cache.repository.as_str();
            let only_cache = repo != c.build.repository;
            let tags =
                crate::image::ecr::cache_tags(&aws.ecr, repo, only_cache, self.clock).await?;
            if tags.is_empty() {
                return Err(BadInput::other(format!(
                    "ECR repository `{repo}` (component `{}`) has no cache tags (`cache-<branch>`): nothing to prune; a build with cache writes them",
                    c.name
                ))
                .into());
            }
            found.push((c, repo, tags));
        }
        let mut failed = false;
        for (c, repo, tags) in found {
            let names: Vec<String> = tags.iter().map(|(t, _)| t.clone()).collect();
            let refused =
                crate::image::ecr::delete_tags(&aws.ecr, repo, &names, self.clock).await?;
            for (tag, digest) in &tags {
                if !refused.iter().any(|r| r.starts_with(&format!("{tag}:"))) {
                    self.actions
                        .line(&format!("{}: removed {repo}:{tag} ({digest})", c.name));
                }
            }
            for r in &refused {
                failed = true;
                self.actions
                    .line(&format!("{}: not removed {repo}:{r}", c.name));
            }
        }
        Ok(if failed { Exit::Failed } else { Exit::Success })
    }
}
