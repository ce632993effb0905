//! (i) `rollback` against a redeploy of the previous commit, in the same
//! sandbox and run: deploy A, deploy B, then time each way back to A's
//! image from the moment it starts to its verdict. The rollback reads the
//! service's deployment history and updates the service to A's revision;
//! the redeploy checks A's build context, logs in to the registry, finds
//! A's content tag (nothing is rebuilt), registers a revision and deploys
//! it. Both roll out on the same sandbox ECS, so the difference is what the
//! redeploy does before its rollout.
//!
//! `cargo bench --bench rollback`; `FASTDEPLOY_BENCH_ROUNDS` (default 4)
//! sets how many times each way is measured, alternating which goes first
//! (whichever runs first after B's first deploy is measured ~0.1 s slower
//! in the sandbox, so an even number of rounds evens it out).

#[path = "support/common.rs"]
mod common;
#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use sandbox::FullSandbox;

const COMMAND: &str = "cargo bench --bench rollback";

/// Runs `cmd` and returns its wall time; panics with its log when it fails.
fn timed(mut cmd: Command, what: &str) -> f64 {
    let started = Instant::now();
    let out = cmd.output().expect("fastdeploy starts");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

/// The task definition the sandbox service runs.
fn serving(sb: &FullSandbox) -> String {
    sandbox::block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let out = ecs
            .describe_services()
            .cluster(sandbox::CLUSTER)
            .services(sandbox::SERVICE)
            .send()
            .await
            .unwrap();
        out.services()[0].task_definition().unwrap().to_string()
    })
}

/// The image the serving revision runs.
fn serving_image(sb: &FullSandbox) -> String {
    let td = serving(sb);
    sandbox::block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let out = ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .unwrap();
        out.task_definition().unwrap().container_definitions()[0]
            .image()
            .unwrap()
            .to_string()
    })
}

/// One round: A and B deployed, then back to A both ways (from B each
/// time); returns (rollback, redeploy) seconds.
fn round(i: usize) -> (f64, f64) {
    let mut sb = FullSandbox::start();
    let a = sb.sha.clone();
    timed(sb.command(), "deploy A");
    let a_image = serving_image(&sb);
    sb.commit_change("app/pages/index.html", &format!("<h1>B {i}</h1>\n"));
    let b = sb.sha.clone();
    timed(sb.command(), "deploy B");
    let back = |sb: &mut FullSandbox, how: &str| -> f64 {
        let wall = match how {
            "rollback" => {
                let mut cmd = sb.command();
                cmd.env("INPUT_COMMAND", "rollback");
                timed(cmd, "rollback")
            }
            _ => {
                sb.checkout(&a);
                let wall = timed(sb.command(), "redeploy of A");
                sb.checkout(&b);
                wall
            }
        };
        assert_eq!(
            serving_image(sb),
            a_image,
            "round {i}: {how} serves A's image"
        );
        // Forward to B again, for the other way (B's content tag is found).
        timed(sb.command(), "deploy B again");
        wall
    };
    let order = if i % 2 == 1 {
        ["rollback", "redeploy"]
    } else {
        ["redeploy", "rollback"]
    };
    let (mut rollback, mut redeploy) = (0.0, 0.0);
    for how in order {
        let wall = back(&mut sb, how);
        if how == "rollback" {
            rollback = wall
        } else {
            redeploy = wall
        }
    }
    eprintln!(
        "round {i}: rollback {rollback:.2} s, redeploy of the previous commit {redeploy:.2} s"
    );
    (rollback, redeploy)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rollback: benchmark skipped (run it with `{COMMAND}`)");
        return;
    }
    let rounds = common::rounds(4);
    let results: Vec<(f64, f64)> = (1..=rounds).map(round).collect();
    let rollback = common::median(results.iter().map(|r| r.0).collect());
    let redeploy = common::median(results.iter().map(|r| r.1).collect());
    let met = rollback < redeploy;
    let rows = format!(
        "| (i) | `rollback` from B back to A, start to verdict (ECS service, sandbox rollout steps of 0.1 s; median of {rounds} rounds) \
         | median {rollback:.2} s | redeploy of A's commit (context checked, registry login, content tag found so nothing is rebuilt, \
         a revision registered): median {redeploy:.2} s | {:.2}x the time | faster than redeploying the previous commit | {} | `{COMMAND}` |\n",
        rollback / redeploy,
        if met { "met" } else { "**not met**" }
    );
    let mut md = String::new();
    writeln!(
        md,
        "### (i) rollback against a redeploy of the previous commit\n"
    )
    .unwrap();
    writeln!(
        md,
        "benches/rollback.rs: in one sandbox, A then B deployed to the ECS service; then back to A by `rollback` and \
         by a redeploy of A's commit, each from B (B is deployed again between them), alternating which goes first. \
         Both roll out on the same sandbox ECS, so the difference is what a redeploy does before its rollout.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| round | rollback | redeploy of the previous commit |\n|---|---|---|"
    )
    .unwrap();
    for (i, (r, d)) in results.iter().enumerate() {
        writeln!(md, "| {} | {r:.2} s | {d:.2} s |", i + 1).unwrap();
    }
    common::write_results("rollback", sandbox::repo_root(), &rows, &md);
}
