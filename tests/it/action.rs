//! `action.yml` is valid action metadata, equals what the input table
//! renders, and every input it declares is read by the binary.

use std::path::Path;

use crate::support::sandbox::repo_root;

#[test]
fn action_yml_matches_the_input_table() {
    let path = repo_root().join("action.yml");
    let expected = fastdeploy::settings::inputs::render_action_yml();
    if std::env::var_os("FASTDEPLOY_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap();
    assert!(
        actual == expected,
        "action.yml is out of date with src/settings/inputs.rs; run `FASTDEPLOY_BLESS=1 cargo test --test it action_yml`"
    );
}

fn validate(path: &Path) {
    let config = action_validator::CliConfig {
        verbose: false,
        rootdir: Some(repo_root()),
        src: vec![path.to_path_buf()],
    };
    assert!(
        matches!(
            action_validator::cli::run(&config),
            action_validator::cli::RunResult::Success
        ),
        "{} is not valid against SchemaStore's schema (see the output above)",
        path.display()
    );
}

#[test]
fn action_yml_and_workflows_are_valid_against_the_schemas() {
    validate(&repo_root().join("action.yml"));
    for entry in std::fs::read_dir(repo_root().join(".github/workflows")).unwrap() {
        validate(&entry.unwrap().path());
    }
    validate(&repo_root().join("docs/examples/deploy.yml"));
}

#[test]
fn action_yml_declares_each_input_once_and_maps_it_to_its_env_var() {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let inputs = doc["inputs"].as_object().unwrap();
    let env = doc["runs"]["env"].as_object().unwrap();
    assert_eq!(inputs.len(), fastdeploy::settings::inputs::INPUTS.len());
    for spec in fastdeploy::settings::inputs::INPUTS {
        assert!(
            inputs.contains_key(spec.name),
            "action.yml lacks input {}",
            spec.name
        );
        let var = fastdeploy::settings::inputs::env_name(spec.name);
        assert_eq!(
            env[&var],
            format!("${{{{ inputs.{} }}}}", spec.name),
            "{var} must map inputs.{}",
            spec.name
        );
    }
    let outputs = doc["outputs"].as_object().unwrap();
    for (name, _) in fastdeploy::gha::OUTPUTS {
        assert!(outputs.contains_key(*name));
    }
}

/// Every input in the table is read somewhere outside the table itself: an
/// input nobody reads would be accepted and silently ignored.
#[test]
fn every_declared_input_is_read_by_the_binary() {
    let mut sources = String::new();
    let mut stack = vec![repo_root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("inputs.rs") {
                sources.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    for spec in fastdeploy::settings::inputs::INPUTS {
        let needle = format!("\"{}\"", spec.name);
        assert!(
            sources.contains(&needle),
            "input `{}` is declared but never read (no {needle} outside src/settings/inputs.rs)",
            spec.name
        );
    }
}

/// Every output the binary writes is declared in action.yml.
#[test]
fn every_written_output_is_declared() {
    let execute: String = std::fs::read_dir(repo_root().join("src/execute"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    let re = regex::Regex::new(r#"set_output\(\s*"([a-z-]+)""#).unwrap();
    let declared: Vec<&str> = fastdeploy::gha::OUTPUTS.iter().map(|(n, _)| *n).collect();
    for cap in re.captures_iter(&execute) {
        assert!(
            declared.contains(&&cap[1]),
            "output `{}` is written but not declared in gha::OUTPUTS",
            &cap[1]
        );
    }
}

#[test]
fn readme_lists_every_input_and_output() {
    let path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- inputs:start -->\n", "<!-- inputs:end -->");
    let a = readme
        .find(start)
        .expect("README has the inputs:start marker")
        + start.len();
    let b = readme.find(end).expect("README has the inputs:end marker");
    let expected = fastdeploy::settings::inputs::render_readme_tables();
    if std::env::var_os("FASTDEPLOY_BLESS").is_some() {
        std::fs::write(
            &path,
            format!("{}{}{}", &readme[..a], expected, &readme[b..]),
        )
        .unwrap();
        return;
    }
    assert!(
        readme[a..b] == expected,
        "README's tables are out of date; run `FASTDEPLOY_BLESS=1 cargo test --test it readme`"
    );
}

/// `serde_yaml` is archived and `serde_yml` unsound: neither may enter the build.
#[test]
fn no_banned_yaml_crates_in_the_lockfile() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    for banned in ["name = \"serde_yaml\"", "name = \"serde_yml\""] {
        assert!(!lock.contains(banned), "Cargo.lock contains {banned}");
    }
}

/// The action's own image passes fastdeploy's Dockerfile checks (silenced
/// findings carry their reason in a comment beside the silencer).
#[test]
fn the_action_dockerfile_passes_its_own_checks() {
    let path = repo_root().join("Dockerfile");
    let df = fastdeploy::checks::dockerfile::load(&path).unwrap();
    let findings = fastdeploy::checks::dockerfile::check(&df, None, &[]);
    assert!(findings.is_empty(), "{findings:#?}");
}

/// A release publishes the CLI for Linux x86_64 and arm64 and macOS (the
/// README's install section promises them), each checked to run and
/// uploaded with its checksum.
#[test]
fn the_release_workflow_publishes_the_cli_for_linux_and_macos() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let jobs = &doc["jobs"];
    let targets: Vec<&str> = jobs["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "aarch64-apple-darwin",
        "x86_64-apple-darwin",
    ] {
        assert!(targets.contains(&t), "{t} in {targets:?}");
    }
    assert_eq!(jobs["binaries"]["needs"], "release");
    let steps = jobs["binaries"]["steps"].to_string();
    assert!(
        steps.contains("--version")
            && steps.contains(".sha256")
            && steps.contains("gh release upload"),
        "{steps}"
    );
    assert!(
        jobs["image"].is_object(),
        "the action image is still published"
    );
}
