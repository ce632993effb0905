//! The sandbox's parts start and answer: if these fail, every other sandbox
//! test would fail for reasons that have nothing to do with fastdeploy.

use crate::support::sandbox::{ECR_PASSWORD, ECR_USER, Moto, Receiver, Registry};

#[tokio::test(flavor = "multi_thread")]
async fn moto_serves_ecr_with_the_token_the_registry_accepts() {
    let moto = Moto::start();
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
    let auth = ecr.get_authorization_token().send().await.unwrap();
    let data = &auth.authorization_data()[0];
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        format!("{ECR_USER}:{ECR_PASSWORD}")
    );
}

#[test]
fn registry_requires_and_accepts_the_sandbox_credentials() {
    let reg = Registry::start();
    let c = reqwest::blocking::Client::new();
    assert_eq!(
        c.get(format!("{}/v2/", reg.url())).send().unwrap().status(),
        401
    );
    let ok = c
        .get(format!("{}/v2/", reg.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[test]
fn receiver_records_and_follows_its_script() {
    let r = Receiver::start();
    r.script(serde_json::json!([{"match": "POST /hook", "status": 503, "times": 1}]));
    let c = reqwest::blocking::Client::new();
    assert_eq!(
        c.post(format!("{}/hook", r.url))
            .json(&serde_json::json!({"a": 1}))
            .send()
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        c.post(format!("{}/hook", r.url))
            .json(&serde_json::json!({"a": 2}))
            .send()
            .unwrap()
            .status(),
        200
    );
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1]["body"]["a"], 2);
}
