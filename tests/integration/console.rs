//! The audit console over plain HTTP: sign-in and its cookie, the shared
//! brute-force limiter, sessions that end with their login, the security
//! headers, escaping of user-supplied text, permissions and tenant scope, and
//! the audit slice download. (The same pages in a real browser:
//! `console_browser`.)

use serde_json::{Value, json};

use super::support::{ADMIN_PASSWORD, TestServer, admin_auth};

/// A client that does not follow redirects, so that each answer is seen.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in through the form; returns the answer.
async fn post_sign_in(server: &TestServer, username: &str, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{}/console/sign-in", server.url))
        .header("origin", &server.url)
        .form(&[("username", username), ("secret", secret), ("next", "/console/accounts")])
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the `Cookie` header value of the session.
pub(super) async fn sign_in(server: &TestServer, username: &str, secret: &str) -> String {
    let r = post_sign_in(server, username, secret).await;
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// Signs out through the console's button.
async fn sign_out(server: &TestServer, cookie: &str) -> reqwest::Response {
    let url = format!("{}/console/sign-out", server.url);
    client().post(url).header("origin", &server.url).header("cookie", cookie).send().await.unwrap()
}

/// GETs a console path with a session cookie: (status, headers, body).
async fn get(server: &TestServer, cookie: &str, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = client().get(format!("{}{path}", server.url)).header("cookie", cookie).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

const MARKUP: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

/// A domain and a user with a password, a description full of markup, an alias.
async fn seeded(server: &TestServer) -> (String, String) {
    let domain = server.domain("example.org").await;
    let id = server
        .account(json!({"@type": "User", "name": "alice", "domainId": domain, "description": MARKUP,
            "aliases": [{"name": "al", "domainId": domain}],
            "credentials": [{"@type": "Password", "secret": "Correct-Horse-Battery-9"}]}))
        .await;
    (domain, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_sets_a_strict_http_only_cookie_and_pages_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // Without a session: to the sign-in page, remembering where to go.
    let (status, headers, _) = get(&server, "", "/console/accounts?text=a").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console/sign-in?next=/console/accounts%3Ftext%3Da");
    let (status, _, _) = get(&server, "ledger_console=forged", "/console/").await;
    assert_eq!(status, 303);

    let r = post_sign_in(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/accounts");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let token = set.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert!(token.len() >= 43, "256 random bits: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let (status, _, body) = get(&server, &cookie, "/console/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Signed in as <strong>admin</strong>"), "{body}");

    // Sign-out ends the session on the server, not just in the browser.
    let r = sign_out(&server, &cookie).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, _, _) = get(&server, &cookie, "/console/").await;
    assert_eq!(status, 303, "the old cookie no longer works");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_from_another_site_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let r = client()
        .post(format!("{}/console/sign-in", server.url))
        .header("origin", "https://evil.example")
        .form(&[("username", "admin"), ("secret", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let r = client()
        .post(format!("{}/console/sign-in", server.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "admin"), ("secret", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A redirect after sign-in never leaves the console.
    let r = client()
        .post(format!("{}/console/sign-in", server.url))
        .form(&[("username", "admin"), ("secret", ADMIN_PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console/");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_count_toward_the_apis_limiter() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // The test server allows 5 failures per source.
    for _ in 0..5 {
        let r = post_sign_in(&server, "admin", "wrong-password").await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = post_sign_in(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429, "even the right password is refused now");
    assert!(r.headers().contains_key("retry-after"));
    // And the API, from the same address, is refused too.
    let r = server.client().get(format!("{}/.well-known/jmap", server.url)).header("authorization", admin_auth());
    assert_eq!(r.send().await.unwrap().status(), 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_has_a_strict_csp_and_shows_markup_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, id) = seeded(&server).await;
    let cookie = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let pages = [
        "/console/".to_owned(),
        "/console/accounts".to_owned(),
        "/console/accounts?text=alice".to_owned(),
        "/console/domains".to_owned(),
        "/console/roles".to_owned(),
        "/console/tenants".to_owned(),
        format!("/console/accounts/{id}"),
        format!("/console/accounts/{id}?asOf=1"),
        "/console/events/2".to_owned(),
        "/console/sign-in".to_owned(),
    ];
    for path in &pages {
        let (status, headers, body) = get(&server, &cookie, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store", "{path}: pages hold personal data");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        // No inline script or style for the CSP to block: every script has a src.
        assert_eq!(body.matches("<script").count(), body.matches("<script src=\"/console/static/").count(), "{path}");
        assert!(!body.contains(" style="), "{path}");
        assert!(!body.contains(MARKUP), "{path}: the description is rendered as markup");
    }
    let (_, _, account) = get(&server, &cookie, &format!("/console/accounts/{id}")).await;
    assert!(account.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"), "{account}");
    let (_, _, list) = get(&server, &cookie, "/console/accounts").await;
    assert!(list.contains("&lt;script&gt;alert(1)"), "{list}");
    // Only GETs: a page refuses other methods.
    let r = client().delete(format!("{}/console/accounts/{id}", server.url)).header("cookie", &cookie).send().await;
    assert_eq!(r.unwrap().status(), 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_when_its_login_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, id) = seeded(&server).await;
    let cookie = sign_in(&server, "alice@example.org", "Correct-Horse-Battery-9").await;
    let (status, _, body) = get(&server, &cookie, &format!("/console/accounts/{id}")).await;
    assert_eq!(status, 200, "{body}");
    // The administrator replaces alice's password: her console session ends.
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"update": {id.clone(): {"credentials": [{"@type": "Password", "secret": "Another-Horse-Battery-7"}]}}}),
        )
        .await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    let (status, headers, _) = get(&server, &cookie, &format!("/console/accounts/{id}")).await;
    assert_eq!(status, 303);
    assert!(headers["location"].to_str().unwrap().starts_with("/console/sign-in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_rights_sees_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (domain, alice) = seeded(&server).await;
    let bob = server
        .account(json!({"@type": "User", "name": "bob", "domainId": domain,
            "credentials": [{"@type": "Password", "secret": "Correct-Horse-Battery-8"}]}))
        .await;
    let cookie = sign_in(&server, "alice@example.org", "Correct-Horse-Battery-9").await;
    let (status, _, own) = get(&server, &cookie, &format!("/console/accounts/{alice}")).await;
    assert_eq!(status, 200, "{own}");
    assert!(own.contains("id=\"timeline\""), "{own}");
    let (status, _, other) = get(&server, &cookie, &format!("/console/accounts/{bob}")).await;
    assert_eq!(status, 403, "{other}");
    assert!(!other.contains("bob@example.org"), "{other}");
    let (status, _, _) = get(&server, &cookie, "/console/accounts").await;
    assert_eq!(status, 403);
    // Log-wide views are not shown, and their routes refuse.
    let (status, _, overview) = get(&server, &cookie, "/console/").await;
    assert_eq!(status, 200);
    assert!(!overview.contains("id=\"latest\""), "{overview}");
    assert!(!overview.contains("id=\"checkpoint\""), "{overview}");
    let (status, _, _) = get(&server, &cookie, "/console/live").await;
    assert_eq!(status, 403);
    let (status, _, _) = get(&server, &cookie, "/console/events/1").await;
    assert_eq!(status, 403);
    let (status, _, _) = get(&server, &cookie, &format!("/console/accounts/{alice}/export")).await;
    assert_eq!(status, 403);
    // A record of her own history opens from her account page; bob's does not.
    let own_history = server.call("x:AccountHistory/get", json!({"ids": [alice, bob]})).await.1;
    let position = |i: usize| own_history["list"][i]["events"][0]["position"].as_u64().unwrap();
    let (status, _, event) = get(&server, &cookie, &format!("/console/events/{}?account={alice}", position(0))).await;
    assert_eq!(status, 200, "{event}");
    let (status, _, _) = get(&server, &cookie, &format!("/console/events/{}?account={alice}", position(1))).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&server, &cookie, &format!("/console/events/{}?account={bob}", position(1))).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_administrator_sees_only_its_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (t1, t2) = (server.tenant("t1").await, server.tenant("t2").await);
    let d1 = server.domain_in("one.example", &t1).await;
    let d2 = server.domain_in("two.example", &t2).await;
    let (_, r) = server
        .call(
            "x:Account/set",
            json!({"create": {"a": {"@type": "User", "name": "admin", "domainId": d1, "memberTenantId": t1,
                "roles": {"@type": "Admin"},
                "credentials": [{"@type": "ApiKey", "description": "t1", "permissions": {"@type": "Inherit"}}]}}}),
        )
        .await;
    let key = r["created"]["a"]["credentials"]["0"]["secret"].as_str().unwrap().to_owned();
    // A group outside every tenant: t1's administrator cannot /get it, so the console must not name it.
    let global = server.domain("global.example").await;
    let hidden = server.account(json!({"@type": "Group", "name": "global-secret-group", "domainId": global})).await;
    let mine = server
        .account(
            json!({"@type": "User", "name": "carol", "domainId": d1, "memberTenantId": t1, "memberGroupIds": [hidden]}),
        )
        .await;
    let theirs = server.account(json!({"@type": "User", "name": "dave", "domainId": d2, "memberTenantId": t2})).await;
    // An API key signs in with the user name left empty.
    let cookie = sign_in(&server, "", &key).await;
    let (status, _, list) = get(&server, &cookie, "/console/accounts").await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains("carol@one.example"), "{list}");
    assert!(!list.contains("dave") && !list.contains("two.example"), "{list}");
    let (status, _, page) = get(&server, &cookie, &format!("/console/accounts/{mine}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("account {hidden}")), "{page}");
    assert!(!page.contains("global-secret-group"), "a group outside the tenant is named: {page}");
    let (status, _, page) = get(&server, &cookie, &format!("/console/accounts/{theirs}")).await;
    assert_eq!(status, 404, "{page}");
    assert!(!page.contains("dave"), "{page}");
    let (_, _, domains) = get(&server, &cookie, "/console/domains").await;
    assert!(domains.contains("one.example") && !domains.contains("two.example"), "{domains}");
    // Tenant-scoped: no log-wide views, even with an administrator's role.
    let (status, _, _) = get(&server, &cookie, "/console/live").await;
    assert_eq!(status, 403);
    let (status, _, _) = get(&server, &cookie, "/console/events/1").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_slice_download_is_the_apis_account_export() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, id) = seeded(&server).await;
    server.account(json!({"@type": "User", "name": "other", "domainId": server.domain("other.example").await})).await;
    let cookie = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let r = client().get(format!("{}/console/accounts/{id}/export", server.url)).header("cookie", &cookie).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-disposition"], format!("attachment; filename=\"account-{id}.ndjson\""));
    let console = r.text().await.unwrap();
    let api = server
        .client()
        .get(format!("{}/api/audit/export?account={id}", server.url))
        .header("authorization", admin_auth())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(console, api);
    let lines: Vec<Value> = console.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (records, trailer) = lines.split_at(lines.len() - 1);
    assert!(trailer[0]["trailer"]["checkpoint"].is_string(), "a signed trailer: {}", trailer[0]);
    assert!(
        !records.is_empty() && records.iter().all(|l| l["inclusion"].is_array() && l.get("skipped").is_none()),
        "only the account's records, each with its inclusion proof"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_account_shows_as_erased_with_its_history_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, id) = seeded(&server).await;
    let (_, r) = server.call("x:Account/set", json!({"update": {id.clone(): {"name": "alicia"}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    let cookie = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let (_, _, before) = get(&server, &cookie, &format!("/console/accounts/{id}")).await;
    assert!(before.contains("alicia@example.org") && before.contains("data-event=\"AccountRenamed\""), "{before}");
    let (_, r) = server.call("x:Database/erase", json!({"ids": [id]})).await;
    assert!(r.to_string().contains(&id), "{r}");
    let (status, _, page) = get(&server, &cookie, &format!("/console/accounts/{id}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("class=\"tag erased\""), "{page}");
    assert!(page.contains("data-event=\"AccountErased\""), "{page}");
    assert!(page.contains("erased: not recoverable"), "{page}");
    // Nothing personal is left on the page.
    for gone in ["alice", "alicia", "al@example.org", "alert(1)"] {
        assert!(!page.contains(gone), "{gone:?} is still shown: {page}");
    }
    let (_, _, record) = get(&server, &cookie, "/console/events/2").await;
    assert!(record.contains("class=\"tag erased\""), "{record}");
    assert!(!record.contains("alice"), "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sign_ins_and_live_positions_are_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // A huge form is not read into memory: refused by its size.
    let big = format!("username=admin&secret={}", "A".repeat(1024 * 1024));
    let r = client()
        .post(format!("{}/console/sign-in", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.headers().get("set-cookie").is_none());
    // `next` never leaves the console, even through dot segments or bad bytes.
    for next in ["/console/../../api", "/console/%2e%2e/api", "/console/\r\nX: y"] {
        let r = client()
            .post(format!("{}/console/sign-in", server.url))
            .form(&[("username", "admin"), ("secret", ADMIN_PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/console/", "{next:?}");
    }
    // A position past the end of the log (even the largest number) is the end:
    // the stream then sends the next record written.
    let cookie = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let (_, id) = seeded(&server).await;
    let mut stream = client()
        .get(format!("{}/console/live?after=18446744073709551615", server.url))
        .header("cookie", &cookie)
        .header("last-event-id", "18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (_, r) = server.call("x:Account/set", json!({"update": {id.clone(): {"description": "next"}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    let written = server.ledger.read().last_seq;
    let mut seen = String::new();
    let wait = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !seen.contains("event: row") {
            let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    assert!(wait.await.is_ok(), "no row arrived: {seen}");
    assert!(seen.contains(&format!("id: {written}")), "{seen}");
    let (status, _, _) = get(&server, &cookie, "/console/").await;
    assert_eq!(status, 200, "the server is still well");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_stream_ends_with_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (_, id) = seeded(&server).await;
    let cookie = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let last = server.ledger.read().last_seq;
    let stream = client()
        .get(format!("{}/console/live?after={last}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let r = sign_out(&server, &cookie).await;
    assert_eq!(r.status(), 303);
    // A write wakes the stream: it finds its session gone and ends, sending nothing.
    let (_, r) = server.call("x:Account/set", json!({"update": {id.clone(): {"description": "after sign-out"}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    let body = tokio::time::timeout(std::time::Duration::from_secs(20), stream.text()).await;
    let body = body.expect("the stream ended").unwrap();
    assert!(!body.contains("event: row"), "{body}");
}
