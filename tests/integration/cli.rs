//! The built `ledger` binary as a client of a live server: the reference pages'
//! examples verbatim (our binary name, a local URL), outputs, errors, `--help`.

use std::process::Command;

use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, TestServer, redact, snapshot_settings};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ledger(server: &TestServer, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args)
        .env("LEDGER_URL", &server.url)
        .env("LEDGER_CREDENTIALS", format!("admin:{ADMIN_PASSWORD}"))
        .env_remove("LEDGER_TOKEN")
        .env("LEDGER_LOG", "warn")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn ok(server: &TestServer, args: &[&str]) -> String {
    let run = ledger(server, args);
    assert_eq!(run.code, 0, "ledger {args:?}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    run.stdout
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn account_by_name(server: &TestServer, name: &str) -> Option<Value> {
    let (_, q) = server.call("x:Account/query", json!({"filter": {"name": name}})).await;
    let (_, g) = server.call("x:Account/get", json!({"ids": q["ids"]})).await;
    g["list"].as_array().unwrap().iter().find(|a| a["name"] == name).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_examples_run_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    ok(&server, &["create", "domain", "--field", "name=example.org"]);

    // stalwart-cli create account/user, with <Domain id> and <Tenant id> filled in.
    ok(&server, &["create", "tenant", "--field", "name=t1"]);
    let created = json_of(&ok(
        &server,
        &[
            "create",
            "account/user",
            "--field",
            "name=alice",
            "--field",
            "domainId=example.org",
            "--field",
            "credentials=[]",
            "--field",
            "memberGroupIds=[]",
            "--field",
            "memberTenantId=t1",
            "--field",
            r#"roles={"@type":"User"}"#,
            "--field",
            r#"permissions={"@type":"Inherit"}"#,
            "--field",
            "quotas={}",
            "--field",
            "aliases=[]",
            "--field",
            "description=Example",
            "--field",
            "locale=en_US",
            "--field",
            "timeZone=Africa/Abidjan",
            "--field",
            r#"encryptionAtRest={"@type":"Disabled"}"#,
        ],
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["emailAddress"], "alice@example.org");
    assert!(created.get("timeZone").is_none(), "created holds what the server added: {created}");

    // stalwart-cli get account id1
    let got = json_of(&ok(&server, &["get", "account", &id]));
    assert_eq!(got["name"], "alice");
    assert_eq!(got["timeZone"], "Africa/Abidjan");
    assert_eq!(json_of(&ok(&server, &["get", "account", "alice@example.org"]))["id"], id, "names stand for ids");

    // stalwart-cli query account
    let listed = json_of(&ok(&server, &["query", "account"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // stalwart-cli update account id1 --field description='Updated'
    ok(&server, &["update", "account", &id, "--field", "description=Updated"]);
    assert_eq!(account_by_name(&server, "alice").await.unwrap()["description"], "Updated");

    // stalwart-cli delete account --ids id1
    ok(&server, &["delete", "account", "--ids", &id]);
    assert!(account_by_name(&server, "alice").await.is_none());

    // stalwart-cli -u https://jmap.example.org database delete john (a local URL here;
    // the ledger confirms an erasure: `--yes` off a terminal)
    ok(&server, &["create", "account/user", "--field", "name=john", "--field", "domainId=example.org"]);
    ok(&server, &["-u", &server.url, "database", "delete", "john", "--yes"]);
    assert!(account_by_name(&server, "john").await.is_none());

    // database rename john john.doe: same id, new name and address.
    let john =
        json_of(&ok(&server, &["create", "account/user", "--field", "name=john", "--field", "domainId=example.org"]));
    ok(&server, &["-u", &server.url, "database", "rename", "john", "john.doe"]);
    let renamed = account_by_name(&server, "john.doe").await.expect("renamed");
    assert_eq!(renamed["id"], john["id"]);
    assert_eq!(renamed["emailAddress"], "john.doe@example.org");

    // database purge
    let purged = json_of(&ok(&server, &["-u", &server.url, "database", "purge"]));
    assert_eq!(purged["expiredCredentialsRemoved"], 0);

    // Roles and domains through the same commands, by name.
    ok(
        &server,
        &["create", "role", "--field", "description=helpdesk", "--field", r#"enabledPermissions=["sysAccountGet"]"#],
    );
    ok(
        &server,
        &["update", "role", "helpdesk", "--field", r#"enabledPermissions=["sysAccountGet","sysAccountQuery"]"#],
    );
    let role = json_of(&ok(&server, &["get", "role", "helpdesk"]));
    assert_eq!(role["enabledPermissions"], json!({"sysAccountGet": true, "sysAccountQuery": true}));
    ok(&server, &["delete", "role", "--ids", "helpdesk"]);
    ok(&server, &["update", "domain", "example.org", "--field", "description=Primary"]);
    assert_eq!(json_of(&ok(&server, &["get", "domain", "example.org"]))["description"], "Primary");

    // The older spellings.
    ok(&server, &["account", "update", "john.doe", "jdoe"]);
    assert_eq!(account_by_name(&server, "jdoe").await.unwrap()["id"], john["id"]);
    ok(&server, &["account", "delete", "jdoe@example.org", "--yes"]);
    assert!(account_by_name(&server, "jdoe").await.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_tables_json_and_secrets_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    ok(&server, &["create", "domain", "--field", "name=example.org", "--field", "description=Main"]);
    ok(&server, &["create", "account/group", "--field", "name=staff", "--field", "domainId=example.org"]);
    ok(
        &server,
        &[
            "create",
            "account/user",
            "--field",
            "name=alice",
            "--field",
            "domainId=example.org",
            "--field",
            "description=Sales lead",
            "--field",
            r#"memberGroupIds=["staff@example.org"]"#,
            "--field",
            r#"aliases=[{"name":"info","domainId":"example.org"}]"#,
        ],
    );
    let made = ledger(
        &server,
        &[
            "create",
            "account/user",
            "--table",
            "--field",
            "name=bot",
            "--field",
            "domainId=example.org",
            "--field",
            r#"credentials=[{"@type":"ApiKey","description":"ci","permissions":{"@type":"Inherit"}}]"#,
        ],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(made.stdout.contains("ApiKey secret: lak_"), "{}", made.stdout);
    assert!(made.stderr.contains("shown once and will not be shown again"), "{}", made.stderr);
    let key = made.stdout.lines().find_map(|l| l.strip_prefix("ApiKey secret: ")).unwrap().to_owned();
    let bot = made.stdout.lines().find_map(|l| l.strip_prefix("created x:Account ")).unwrap().to_owned();
    let again = ok(&server, &["get", "account", "bot@example.org"]);
    assert!(!again.contains(&key), "the secret is never shown again");
    // The key works as a --token (a plain user may read itself by id).
    let with_token = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["--token", &key, "get", "account", &bot])
        .env("LEDGER_URL", &server.url)
        .env_remove("LEDGER_CREDENTIALS")
        .output()
        .unwrap();
    assert!(with_token.status.success(), "{}", String::from_utf8_lossy(&with_token.stderr));

    let table = ok(&server, &["query", "account", "--table"]);
    let kv = ok(&server, &["get", "account", "alice@example.org", "--table"]);
    let domains = ok(&server, &["query", "domain", "--table"]);
    let filtered =
        ok(&server, &["query", "account", "--table", "--filter", "memberGroupIds=staff@example.org", "--limit", "5"]);
    let kv: String = kv.lines().filter(|l| !l.starts_with("createdAt")).collect::<Vec<_>>().join("\n");
    let mut json = json_of(&ok(&server, &["get", "account", "alice@example.org", "--json"]));
    redact(&mut json);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("cli_query_table", table);
        insta::assert_snapshot!("cli_get_key_values", kv);
        insta::assert_snapshot!("cli_domain_table", domains);
        insta::assert_snapshot!("cli_filtered_table", filtered);
        insta::assert_json_snapshot!("cli_get_json", json);
    });
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_name_the_jmap_error_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    ok(&server, &["create", "domain", "--field", "name=example.org"]);
    let cases: [(&[&str], &str); 5] = [
        (&["get", "account", "nobody@example.org"], "no x:Account with id or name \"nobody@example.org\""),
        (
            &[
                "create",
                "account/user",
                "--field",
                "name=x",
                "--field",
                "domainId=example.org",
                "--field",
                "locale=english",
            ],
            "invalidProperties (locale)",
        ),
        (&["create", "account/user", "--field", "name"], "\"name\" is not key=value"),
        (&["create", "account/user", "--field", "roles={broken"], "looks like JSON but is not"),
        (&["query", "account", "--filter", "shoeSize=42"], "unsupportedFilter"),
    ];
    for (args, expected) in cases {
        let run = ledger(&server, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stdout);
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("Stack backtrace"), "{}", run.stderr);
    }
    ok(&server, &["create", "account/user", "--field", "name=dup", "--field", "domainId=example.org"]);
    let dup = ledger(&server, &["create", "account/user", "--field", "name=dup", "--field", "domainId=example.org"]);
    assert!(dup.stderr.contains("primaryKeyViolation") && dup.stderr.contains("existing id"), "{}", dup.stderr);
    let in_use = ledger(&server, &["delete", "domain", "--ids", "example.org"]);
    assert_eq!(in_use.code, 1);
    assert!(
        in_use.stderr.contains("objectIsLinked") && in_use.stderr.contains("still has accounts"),
        "{}",
        in_use.stderr
    );
    let denied = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["-c", "admin:wrong", "query", "account"])
        .env("LEDGER_URL", &server.url)
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("authentication failed (401)"));
    server.stop().await;
}

#[test]
fn help_texts() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(args)
            .env_remove("LEDGER_URL")
            .env_remove("LEDGER_CREDENTIALS")
            .env_remove("LEDGER_TOKEN")
            .env_remove("LEDGER_DATA_DIR")
            .env_remove("LEDGER_LISTEN")
            .env_remove("LEDGER_ADMIN_PASSWORD")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("cli_help", help(&["--help"]));
        insta::assert_snapshot!("cli_help_create", help(&["create", "--help"]));
        insta::assert_snapshot!("cli_help_query", help(&["query", "--help"]));
        insta::assert_snapshot!("cli_help_database", help(&["database", "--help"]));
        insta::assert_snapshot!("cli_help_serve", help(&["serve", "--help"]));
    });
}

/// Issue 15, input 6: text a client stored (a description with ESC, CR and
/// LF) never reaches the operator's terminal raw: tables and key/value views
/// escape it, so it cannot draw a forged row or retitle the window.
#[tokio::test(flavor = "multi_thread")]
async fn tables_and_key_values_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let d = server.domain("example.org").await;
    let forged = "ok\u{1b}[2K\r\nzz  User  root@example.org  trusted\u{1b}]0;title\u{7}\u{202e}\u{3164}\u{e0041}";
    server.account(json!({"@type": "User", "name": "mallory", "domainId": d, "description": forged})).await;
    server.account(json!({"@type": "User", "name": "alice", "domainId": d})).await;
    let table = ok(&server, &["query", "account", "--table"]);
    let kv = ok(&server, &["get", "account", "mallory@example.org", "--table"]);
    for out in [&table, &kv] {
        assert!(
            !out.contains(['\u{1b}', '\r', '\u{7}', '\u{202e}', '\u{3164}', '\u{e0041}']),
            "raw control or invisible characters in:\n{out}"
        );
    }
    // An error whose text the server wrote is escaped too.
    let refused = ledger(&server, &["create", "domain", "--field", "name=bad\u{1b}]0;owned\u{7}.example"]);
    assert_ne!(refused.code, 0);
    assert!(!refused.stderr.contains(['\u{1b}', '\u{7}']), "{:?}", refused.stderr);
    let rows = table.lines().filter(|l| !l.is_empty() && !l.starts_with('(')).count();
    assert_eq!(rows, 3, "a header and one row per account:\n{table}");
    assert!(table.contains(r"ok\u{1b}[2K\r\nzz"), "{table}");
    server.stop().await;
}

/// The server caps a `/query` at `max_query_limit` ids and says so (RFC 8620
/// §5.5 `limit`); `ledger query` pages on until it has them all.
#[tokio::test(flavor = "multi_thread")]
async fn query_answers_are_capped_and_the_cli_pages_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |s| s.limits.max_query_limit = 3).await;
    let d = server.domain("example.org").await;
    for i in 0..7 {
        server.account(json!({"@type": "User", "name": format!("user{i}"), "domainId": d})).await;
    }
    let (_, all) = server.call("x:Account/query", json!({"calculateTotal": true})).await;
    assert_eq!((all["ids"].as_array().unwrap().len(), &all["limit"], &all["total"]), (3, &json!(3), &json!(7)));
    let (_, two) = server.call("x:Account/query", json!({"limit": 2})).await;
    assert_eq!(two["ids"].as_array().unwrap().len(), 2);
    assert!(two.get("limit").is_none(), "a limit within the server's is not echoed: {two}");
    let (_, last) = server.call("x:Account/query", json!({"position": 6, "limit": 50})).await;
    assert_eq!(last["ids"].as_array().unwrap().len(), 1);
    assert!(last.get("limit").is_none(), "nothing was cut: {last}");
    let listed = json_of(&ok(&server, &["--json", "query", "account"]));
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["user0", "user1", "user2", "user3", "user4", "user5", "user6"], "{listed}");
    let five = json_of(&ok(&server, &["--json", "query", "account", "--limit", "5"]));
    assert_eq!(five.as_array().unwrap().len(), 5, "{five}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_reads_the_servers_schema() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let all = ok(&server, &["describe", "--table"]);
    for object in ["x:Account", "x:Domain", "x:Role", "x:Tenant", "x:ApiKey", "x:AppPassword", "x:AccountPassword"] {
        assert!(all.lines().any(|l| l.starts_with(object)), "{object} in {all}");
    }
    let account = ok(&server, &["describe", "account", "--table"]);
    assert!(account.contains("x:Account/User") && account.contains("x:Account/Group"), "{account}");
    assert!(account.lines().any(|l| l.starts_with("memberGroupIds") && l.contains("set<objectId x:Account/Group>")));
    assert!(account.lines().any(|l| l.starts_with("emailAddress") && l.contains("serverSet")), "{account}");
    let permissions = ok(&server, &["describe", "Permission", "--table"]);
    assert!(permissions.lines().any(|l| l.starts_with("sysAccountGet")), "{permissions}");
    let unknown = ledger(&server, &["describe", "nothing-here"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no object, type or enum"), "{}", unknown.stderr);
    server.stop().await;
}
