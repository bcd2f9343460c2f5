//! template.yaml against the code: every function crate, every route, every configuration variable
//! and every index is in the template, and each function's IAM policy is exactly the least set of
//! actions listed here. Offline: no emulator needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use e2e::TestResult;
use media_aws::{CLEANUP_INDEX, ENTITY_INDEX, GRANT_INDEX, OWNER_INDEX, TTL_ATTRIBUTE};
use media_core::Config;
use media_core::api::ROUTES;
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> TestResult<Value> {
    let text = std::fs::read_to_string(repo().join("template.yaml"))?;
    Ok(serde_yaml::from_str(&text)?)
}

/// A value with its CloudFormation tag (`!Sub`, `!If`, ...) removed.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn tag(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string().trim_start_matches('!').to_owned()),
        _ => None,
    }
}

/// A resource or ARN as text: `!Sub` strings as written, `!GetAtt X.Arn` as `${X.Arn}`.
fn text(v: &Value) -> String {
    match (tag(v).as_deref(), untag(v)) {
        (Some("GetAtt"), Value::String(s)) => format!("${{{s}}}"),
        (Some("Ref"), Value::String(s)) => format!("${{{s}}}"),
        (_, Value::String(s)) => s.clone(),
        (_, other) => format!("{other:?}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::Sequence(items) if tag(v).is_none() => items.iter().map(text).collect(),
        _ => vec![text(v)],
    }
}

const BUCKET_ARN: &str =
    "arn:${AWS::Partition}:s3:::${AWS::StackName}-media-${AWS::AccountId}-${AWS::Region}";
const BUCKET_NAME: &str = "${AWS::StackName}-media-${AWS::AccountId}-${AWS::Region}";

/// `bucket`, `bucket/uploads/*`, `table`, `table/index/...`, `distribution`.
fn short(resource: &str) -> String {
    if let Some(rest) = resource.strip_prefix(BUCKET_ARN) {
        return format!("bucket{rest}");
    }
    if let Some(rest) = resource.strip_prefix("${MediaTable.Arn}") {
        return format!("table{rest}");
    }
    if resource
        == "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
    {
        return "bus".into();
    }
    if resource
        == "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${CdnDistribution}"
    {
        return "distribution".into();
    }
    resource.to_owned()
}

fn functions(t: &Value) -> TestResult<BTreeMap<String, (String, Value)>> {
    let mut out = BTreeMap::new();
    let resources = t["Resources"].as_mapping().ok_or("no Resources")?;
    for (name, r) in resources {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or(format!("{name:?} has no Metadata.BuildProperties.Binary"))?;
        assert_eq!(
            r["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name:?}"
        );
        let name = name.as_str().ok_or("resource name")?.to_owned();
        out.insert(binary.to_owned(), (name, r.clone()));
    }
    Ok(out)
}

#[test]
fn every_function_crate_is_a_function_of_the_template_and_nothing_else() -> TestResult {
    let t = template()?;
    let in_template: BTreeSet<String> = functions(&t)?.into_keys().collect();
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("functions"))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            crates.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    assert_eq!(in_template, crates);
    assert_eq!(crates.len(), 7);
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(strings(&globals["Architectures"]), ["arm64"]);
    assert_eq!(globals["Tracing"].as_str(), Some("Active"));
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    // Each function has its own log group, with the retention parameter.
    for (name, r) in functions(&t)?.values() {
        let group = r["DependsOn"]
            .as_str()
            .ok_or(format!("{name} has no DependsOn"))?;
        let lg = &t["Resources"][group];
        assert_eq!(lg["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{name}");
        assert_eq!(
            text(&lg["Properties"]["RetentionInDays"]),
            "${LogRetentionDays}"
        );
        let fname = text(&r["Properties"]["FunctionName"]);
        assert_eq!(
            text(&lg["Properties"]["LogGroupName"]),
            format!("/aws/lambda/{fname}"),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn every_route_the_api_serves_is_in_the_template_with_its_function() -> TestResult {
    let t = template()?;
    let mut in_template = BTreeSet::new();
    for (binary, (_, r)) in functions(&t)? {
        let Some(events) = r["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                assert_eq!(text(&p["ApiId"]), "${HttpApi}");
                in_template.insert((
                    p["Method"].as_str().ok_or("Method")?.to_owned(),
                    p["Path"].as_str().ok_or("Path")?.to_owned(),
                    binary.clone(),
                    // Public routes, and only they, opt out of the JWT authorizer.
                    p["Auth"]["Authorizer"].as_str() == Some("NONE"),
                ));
            }
        }
    }
    let in_code: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
                r.public,
            )
        })
        .collect();
    assert_eq!(in_template, in_code);
    Ok(())
}

#[test]
fn every_configuration_variable_is_set_by_the_template_and_no_other() -> TestResult {
    let t = template()?;
    let mut set = BTreeSet::new();
    let globals = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .ok_or("no global variables")?;
    set.extend(globals.keys().filter_map(|k| k.as_str().map(str::to_owned)));
    for (_, r) in functions(&t)?.values() {
        if let Some(vars) = r["Properties"]["Environment"]["Variables"].as_mapping() {
            set.extend(vars.keys().filter_map(|k| k.as_str().map(str::to_owned)));
        }
    }
    let read: BTreeSet<String> = Config::VARIABLES.iter().map(|v| v.to_string()).collect();
    assert_eq!(set, read, "template variables vs Config::VARIABLES");
    assert_eq!(text(&globals[&Value::from("MEDIA_BUCKET")]), BUCKET_NAME);
    // Lambda reserves AWS_LAMBDA_*: the log format comes from LoggingConfig instead.
    assert!(set.iter().all(|v| !v.starts_with("AWS_")));
    Ok(())
}

#[test]
fn the_table_has_the_indexes_and_ttl_the_code_uses() -> TestResult {
    let t = template()?;
    let table = &t["Resources"]["MediaTable"]["Properties"];
    let indexes: BTreeSet<&str> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .ok_or("no indexes")?
        .iter()
        .filter_map(|i| i["IndexName"].as_str())
        .collect();
    assert_eq!(
        indexes,
        BTreeSet::from([OWNER_INDEX, ENTITY_INDEX, CLEANUP_INDEX, GRANT_INDEX])
    );
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(TTL_ATTRIBUTE)
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    Ok(())
}

#[test]
fn the_bucket_is_private_encrypted_tls_only_and_triggers_only_on_uploads() -> TestResult {
    let t = template()?;
    let bucket = &t["Resources"]["MediaBucket"]["Properties"];
    assert_eq!(text(&bucket["BucketName"]), BUCKET_NAME);
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            bucket["PublicAccessBlockConfiguration"][flag].as_bool(),
            Some(true),
            "{flag}"
        );
    }
    let policy = serde_yaml::to_string(&t["Resources"]["MediaBucketPolicy"])?;
    assert!(policy.contains("aws:SecureTransport"), "{policy}");
    let rules = serde_yaml::to_string(&bucket["LifecycleConfiguration"])?;
    assert!(rules.contains("AbortIncompleteMultipartUpload"));
    assert!(rules.contains("Prefix: uploads/"));
    // Versioned, so that a delete stops serving at once and a restore brings objects back; the
    // old versions of served objects outlive the longest grace period by a day.
    assert_eq!(
        bucket["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled")
    );
    let served = bucket["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .ok_or("no lifecycle rules")?
        .iter()
        .find(|r| r["Prefix"].as_str() == Some("derivatives/"))
        .ok_or("no lifecycle rule for derivatives/")?;
    let days = served["NoncurrentVersionExpiration"]["NoncurrentDays"]
        .as_u64()
        .ok_or("no NoncurrentDays")?;
    assert!(days as f64 * 24.0 > media_core::config::MAX_GRACE_PERIOD_HOURS);
    assert_eq!(served["ExpiredObjectDeleteMarker"].as_bool(), Some(true));

    let process = &t["Resources"]["ProcessFunction"]["Properties"];
    let filter = &process["Events"]["Uploaded"]["Properties"]["Filter"]["S3Key"]["Rules"][0];
    assert_eq!(filter["Value"].as_str(), Some("uploads/"));
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals["UPLOAD_PREFIX"].as_str(), Some("uploads/"));
    assert_eq!(globals["DERIVATIVES_PREFIX"].as_str(), Some("derivatives/"));
    // Failures of the asynchronous S3 invocation end in the dead-letter queue, after bounded retries.
    let invoke = &process["EventInvokeConfig"];
    assert_eq!(invoke["MaximumRetryAttempts"].as_u64(), Some(2));
    assert_eq!(
        text(&invoke["DestinationConfig"]["OnFailure"]["Destination"]),
        "${ProcessDeadLetterQueue.Arn}"
    );
    Ok(())
}

/// The least set of (action, resource) each function needs, from what its code calls:
/// presign writes records and the owner's usage and rate items in a transaction, reads them back,
/// and signs PUTs to uploads/ (whole files and parts; the multipart routes also list and abort
/// an upload's parts); confirm reads a record, HEADs the upload and
/// signs GETs; get reads a record and signs GETs of what is served; library queries the owner and
/// entity indexes, reads and updates a record, signs GETs, and for a restore lists the versions of
/// one media's served objects and removes their delete markers; delete reads and updates a record,
/// puts delete markers on the served objects and invalidates the CDN; process reads and updates a
/// record, reads and deletes the upload, writes (and on a race deletes) derivatives, copies a video
/// over 5 GiB in parts (aborting the copy when it fails); cleanup
/// queries its index, updates and deletes records, reads and deletes objects, aborts multipart
/// uploads never completed, and invalidates the CDN.
const LEAST: &[(&str, &[(&str, &str)])] = &[
    (
        "presign",
        &[
            ("dynamodb:PutItem", "table"),
            ("dynamodb:UpdateItem", "table"),
            ("dynamodb:GetItem", "table"),
            ("s3:PutObject", "bucket/uploads/*"),
            ("s3:ListMultipartUploadParts", "bucket/uploads/*"),
            ("s3:AbortMultipartUpload", "bucket/uploads/*"),
        ],
    ),
    (
        "confirm",
        &[
            ("dynamodb:GetItem", "table"),
            ("s3:GetObject", "bucket/uploads/*"),
            ("s3:GetObject", "bucket/derivatives/*"),
        ],
    ),
    (
        "get",
        &[
            ("dynamodb:GetItem", "table"),
            ("s3:GetObject", "bucket/derivatives/*"),
        ],
    ),
    (
        "library",
        &[
            ("events:PutEvents", "bus"),
            ("dynamodb:Query", "table/index/by-owner"),
            ("dynamodb:Query", "table/index/by-entity"),
            ("dynamodb:Query", "table/index/grants-by-media"),
            ("dynamodb:GetItem", "table"),
            ("dynamodb:UpdateItem", "table"),
            ("dynamodb:PutItem", "table"),
            ("dynamodb:DeleteItem", "table"),
            ("s3:GetObject", "bucket/derivatives/*"),
            ("s3:ListBucketVersions", "bucket"),
            ("s3:DeleteObjectVersion", "bucket/derivatives/*"),
        ],
    ),
    (
        "delete",
        &[
            ("events:PutEvents", "bus"),
            ("dynamodb:GetItem", "table"),
            ("dynamodb:UpdateItem", "table"),
            ("dynamodb:Query", "table/index/grants-by-media"),
            ("dynamodb:BatchWriteItem", "table"),
            ("s3:DeleteObject", "bucket/derivatives/*"),
            ("cloudfront:CreateInvalidation", "distribution"),
        ],
    ),
    (
        "process",
        &[
            ("events:PutEvents", "bus"),
            ("dynamodb:GetItem", "table"),
            ("dynamodb:UpdateItem", "table"),
            ("s3:GetObject", "bucket/uploads/*"),
            ("s3:DeleteObject", "bucket/uploads/*"),
            ("s3:PutObject", "bucket/derivatives/*"),
            ("s3:DeleteObject", "bucket/derivatives/*"),
            ("s3:AbortMultipartUpload", "bucket/derivatives/*"),
        ],
    ),
    (
        "cleanup",
        &[
            ("events:PutEvents", "bus"),
            ("dynamodb:Query", "table/index/cleanup-due"),
            ("dynamodb:UpdateItem", "table"),
            ("dynamodb:DeleteItem", "table"),
            ("s3:GetObject", "bucket/uploads/*"),
            ("s3:AbortMultipartUpload", "bucket/uploads/*"),
            ("s3:DeleteObject", "bucket/uploads/*"),
            ("s3:DeleteObject", "bucket/derivatives/*"),
            ("cloudfront:CreateInvalidation", "distribution"),
        ],
    ),
];

#[test]
fn each_function_holds_exactly_its_least_privilege() -> TestResult {
    let t = template()?;
    let fns = functions(&t)?;
    for (binary, least) in LEAST {
        let (name, r) = fns.get(*binary).ok_or(format!("no function {binary}"))?;
        let mut granted = BTreeSet::new();
        for policy in r["Properties"]["Policies"]
            .as_sequence()
            .ok_or(format!("{name} has no Policies"))?
        {
            let statements = policy["Statement"].as_sequence().ok_or(format!(
                "{name}: only inline statements, no managed policies"
            ))?;
            for st in statements {
                // `!If [Condition, statement, !Ref AWS::NoValue]`: the statement when it exists.
                let st = match (tag(st).as_deref(), untag(st)) {
                    (Some("If"), Value::Sequence(branches)) => branches[1].clone(),
                    _ => st.clone(),
                };
                assert_eq!(st["Effect"].as_str(), Some("Allow"), "{name}");
                assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
                for action in strings(&st["Action"]) {
                    for resource in strings(&st["Resource"]) {
                        assert!(!action.contains('*'), "{name}: wildcard action {action}");
                        granted.insert((action.clone(), short(&resource)));
                    }
                }
            }
        }
        let expected: BTreeSet<(String, String)> = least
            .iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect();
        assert_eq!(granted, expected, "{name}");
    }
    assert_eq!(fns.len(), LEAST.len());
    // The spot checks the issue names.
    let holds = |f: &str, a: &str| {
        LEAST
            .iter()
            .any(|(b, l)| *b == f && l.iter().any(|(x, _)| *x == a))
    };
    assert!(!holds("get", "s3:PutObject") && !holds("get", "dynamodb:UpdateItem"));
    assert!(!holds("presign", "s3:GetObject"));
    // No function lists the bucket: cleanup deletes the keys records name. (A restore lists the
    // versions under one media's prefix: its grant is conditioned on the derivatives prefix.)
    assert!(
        !LEAST
            .iter()
            .any(|(_, l)| l.iter().any(|(a, _)| *a == "s3:ListBucket"))
    );
    Ok(())
}

#[test]
fn alarms_watch_the_dead_letters_errors_throttles_and_the_api_5xx_rate() -> TestResult {
    let t = template()?;
    let alarms: Vec<String> = t["Resources"]
        .as_mapping()
        .ok_or("Resources")?
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(serde_yaml::to_string)
        .collect::<Result<_, _>>()?;
    for needle in [
        "ApproximateNumberOfMessagesVisible",
        "MetricName: Errors",
        "MetricName: Throttles",
        "MetricName: 5xx",
    ] {
        assert!(
            alarms.iter().any(|a| a.contains(needle)),
            "no alarm on {needle}"
        );
    }
    for a in &alarms {
        assert!(
            a.contains("AlarmTopic"),
            "an alarm that notifies no one: {a}"
        );
    }
    let outputs: BTreeSet<&str> = t["Outputs"]
        .as_mapping()
        .ok_or("Outputs")?
        .keys()
        .filter_map(Value::as_str)
        .collect();
    for o in [
        "ApiUrl",
        "BucketName",
        "TableName",
        "CdnUrl",
        "DeadLetterQueueUrl",
    ] {
        assert!(outputs.contains(o), "no output {o}");
    }
    Ok(())
}

#[test]
fn the_openapi_document_describes_exactly_the_routes_of_the_template() -> TestResult {
    let text = std::fs::read_to_string(repo().join("openapi.json"))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().ok_or("no paths")? {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    // ROUTES is the template's routes (checked above), so this is template <-> OpenAPI.
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
    // Every $ref resolves.
    let mut refs = Vec::new();
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                }
                m.values().for_each(|x| collect(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    collect(&doc, &mut refs);
    for r in refs {
        let pointer = r.strip_prefix('#').ok_or(format!("external ref {r}"))?;
        assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
    }
    Ok(())
}

/// The lines of `[section]` in a TOML file (up to the next section header).
fn toml_section(path: &Path, section: &str) -> TestResult<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .skip_while(|l| l.trim() != format!("[{section}]"))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

#[test]
fn the_deployed_build_unwinds_so_a_panic_is_a_rejection_not_a_crash() -> TestResult {
    // cargo-lambda sets panic = "abort" unless the release profile says otherwise.
    let release = toml_section(&repo().join("Cargo.toml"), "profile.release")?;
    assert!(
        release
            .iter()
            .any(|l| l.replace(' ', "") == "panic=\"unwind\""),
        "{release:?}"
    );
    Ok(())
}

#[test]
fn only_the_process_function_links_the_image_pipeline() -> TestResult {
    let t = template()?;
    for name in functions(&t)?.keys() {
        let deps = toml_section(
            &repo().join("functions").join(name).join("Cargo.toml"),
            "dependencies",
        )?;
        let links = deps.iter().any(|l| l.starts_with("media-pipeline"));
        assert_eq!(links, name.as_str() == "process", "{name}: {deps:?}");
        assert!(deps.iter().any(|l| l.starts_with("media-core")), "{name}");
    }
    Ok(())
}

#[test]
fn every_upload_is_scanned_by_default_and_guardduty_watches_the_upload_prefix() -> TestResult {
    let t = template()?;
    let param = &t["Parameters"]["MalwareScanner"];
    assert_eq!(param["Default"].as_str(), Some("guardduty"));
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(text(&globals["MALWARE_SCANNER"]), "${MalwareScanner}");
    // The plan protects the upload prefix, and exists only in its mode.
    let plan = &t["Resources"]["MalwareProtectionPlan"];
    assert_eq!(plan["Condition"].as_str(), Some("UseGuardDuty"));
    assert_eq!(
        t["Resources"]["MalwareProtectionRole"]["Condition"].as_str(),
        Some("UseGuardDuty")
    );
    let bucket = &plan["Properties"]["ProtectedResource"]["S3Bucket"];
    assert_eq!(strings(&bucket["ObjectPrefixes"]), ["uploads/"]);
    assert!(text(&bucket["BucketName"]).contains("-media-"));
    // Its verdicts reach the process function.
    let rule = &t["Resources"]["ProcessFunction"]["Properties"]["Events"]["Scanned"];
    assert_eq!(rule["Type"].as_str(), Some("EventBridgeRule"));
    let pattern = &rule["Properties"]["Pattern"];
    assert_eq!(strings(&pattern["source"]), ["aws.guardduty"]);
    assert_eq!(
        strings(&pattern["detail-type"]),
        ["GuardDuty Malware Protection Object Scan Result"]
    );
    // And a scan without a verdict alarms.
    let alarm = &t["Resources"]["ScannerFailuresAlarm"]["Properties"];
    assert!(serde_yaml::to_string(&alarm["Metrics"])?.contains("scan_total"));
    Ok(())
}
